"""Alerts to a Slack-compatible webhook: each critical event or condition once, rate-limited.

Sources: ``monitor.alert_events`` (risk violations, reconciliation corrections, incomplete
liquidations, failed recovery, anything CRITICAL) past a cursor, and ``monitor.alert_conditions``
(trading halted or reducing, a service down, a held symbol's price stale), each episode keyed so it
is alerted once and, once it ends, followed by one "resolved".  Every alert is first recorded in
``monitor.alert_log`` (UNIQUE ``alert_key``), then sent; the row's status says what became of it.

Rate limits: at most one post per ``min_interval_s`` and ``max_per_min`` a minute, each post a digest
of up to ``max_lines`` alerts (the rest wait for the next pass, never dropped); an alert whose
``throttle_key`` (kind, rule, symbol) was sent within ``repeat_s`` is recorded SUPPRESSED instead.
A failed post is retried with backoff and given up (FAILED) after ``max_attempts``.

A crash between the post and the commit sends that digest again on restart (at least once).  The
text posted is redacted of every secret in force and never holds the webhook URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
from loguru import logger

from stock_manager.shared.db.pool import Pool
from stock_manager.shared.locks import Lock, lock_params
from stock_manager.shared.logging import Redactor
from stock_manager.shared.resources import package_path
from stock_manager.shared.sql import load_queries

Q = load_queries(package_path(__package__, "sql", "alerts.sql"))


class AlertStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    SUPPRESSED = "SUPPRESSED"
    FAILED = "FAILED"


# The same pairs as monitor.alert_transitions (db/migrations/0013); a test keeps them equal.
ALERT_TRANSITIONS = frozenset({
    ("NONE", "PENDING"), ("NONE", "SUPPRESSED"),
    ("PENDING", "SENT"), ("PENDING", "SUPPRESSED"), ("PENDING", "FAILED"),
})

ICON = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":white_check_mark:"}


@dataclass(frozen=True)
class Pending:
    alert_id: int
    kind: str
    severity: str
    throttle_key: str
    message: str
    source: str = "event"
    symbol: str | None = None


@dataclass(frozen=True)
class Plan:
    send: list[Pending]
    suppress: list[int]
    repeats: dict[int, int]  # alert_id sent -> how many like it were folded into it


def plan_batch(pending: Sequence[Pending], recently_sent: set[str], max_lines: int) -> Plan:
    """Pick what one post carries.

    A resolution is always sent.  Otherwise the first alert of a throttle key goes out and later ones
    in the same batch fold into it; a key already sent within the repeat window is suppressed.
    Alerts past ``max_lines`` stay pending for the next post.
    """
    send: list[Pending] = []
    suppress: list[int] = []
    repeats: dict[int, int] = {}
    first_of: dict[str, Pending] = {}
    for a in pending:
        if a.source != "resolved":
            if a.throttle_key in recently_sent:
                suppress.append(a.alert_id)
                continue
            if a.throttle_key in first_of:
                lead = first_of[a.throttle_key]
                repeats[lead.alert_id] = repeats.get(lead.alert_id, 0) + 1
                suppress.append(a.alert_id)
                continue
        if len(send) >= max_lines:
            continue
        send.append(a)
        if a.source != "resolved":
            first_of[a.throttle_key] = a
    return Plan(send, suppress, repeats)


def format_text(plan: Plan, label: str) -> str:
    lines = []
    for a in plan.send:
        more = plan.repeats.get(a.alert_id, 0)
        tail = f" (+{more} more like it)" if more else ""
        lines.append(f"{ICON.get(a.severity, '')} *{a.kind}* {a.message}{tail}".strip())
    if len(lines) == 1:
        return f"[stock-manager {label}] {lines[0]}"
    return f"[stock-manager {label}] {len(lines)} alerts\n" + "\n".join(f"• {line}" for line in lines)


@dataclass
class RateLimiter:
    """At most one post per ``min_interval_s`` and ``max_per_min`` per minute; backoff after failures."""

    min_interval_s: float
    max_per_min: int
    now: Callable[[], float] = time.monotonic
    _sent: deque[float] = field(default_factory=deque)
    _blocked_until: float = 0.0
    _failures: int = 0

    def allowed(self) -> bool:
        t = self.now()
        while self._sent and self._sent[0] <= t - 60:
            self._sent.popleft()
        if t < self._blocked_until:
            return False
        if self._sent and t - self._sent[-1] < self.min_interval_s:
            return False
        return len(self._sent) < self.max_per_min

    def record_success(self) -> None:
        self._sent.append(self.now())
        self._failures = 0

    def record_failure(self, retry_after_s: float | None = None) -> float:
        self._failures += 1
        wait = retry_after_s if retry_after_s is not None else min(2.0 ** self._failures, 300.0)
        self._blocked_until = self.now() + wait
        return wait


class WebhookError(Exception):
    def __init__(self, text: str, retry_after_s: float | None = None) -> None:
        super().__init__(text)
        self.retry_after_s = retry_after_s


class Webhook:
    """POSTs ``{"text": ...}``.  Errors name the host and status, never the URL."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self._url = url
        self.host = httpx.URL(url).host
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def post(self, text: str) -> None:
        try:
            resp = await self._client.post(self._url, json={"text": text})
        except httpx.HTTPError as e:
            raise WebhookError(f"webhook {self.host}: {type(e).__name__}") from None
        if resp.status_code >= 300:
            retry = resp.headers.get("retry-after")
            raise WebhookError(f"webhook {self.host}: HTTP {resp.status_code}",
                               float(retry) if retry and retry.isdigit() else None)

    async def close(self) -> None:
        await self._client.aclose()


@dataclass
class AlertConfig:
    label: str = "sim"
    interval_s: float = 5.0
    min_interval_s: float = 1.0
    max_per_min: int = 20
    repeat_s: float = 600.0
    max_age_s: float = 3600.0
    max_lines: int = 15
    max_attempts: int = 10


class Alerter:
    def __init__(self, pool: Pool, webhook: Webhook, cfg: AlertConfig, redact: Redactor,
                 limiter: RateLimiter | None = None) -> None:
        self.pool = pool
        self.webhook = webhook
        self.cfg = cfg
        self.redact = redact
        self.limiter = limiter or RateLimiter(cfg.min_interval_s, cfg.max_per_min)
        self.sent_posts = 0

    async def run(self, stopping: asyncio.Event) -> None:
        logger.info("alerts to a webhook at {} (every {} s)", self.webhook.host, self.cfg.interval_s)
        while not stopping.is_set():
            try:
                await self.run_once()
            except Exception as e:  # the loop outlives a bad pass; the next one retries
                logger.warning("alert pass failed: {}", self.redact(f"{type(e).__name__}: {e}"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.cfg.interval_s)

    async def run_once(self) -> int:
        """One pass: record new alerts, send what the limits allow.  Returns the alerts sent."""
        async with self.pool.connection() as conn, conn.transaction():
            locked = await (await conn.execute(Q["try_lock"], lock_params(Lock.ALERT_LOOP))).fetchone()
            if not locked or not locked["locked"]:
                return 0  # another dashboard is sending
            await self._record_events(conn)
            await self._record_conditions(conn)
            return await self._send(conn)

    async def _record_events(self, conn: Any) -> None:
        row = await (await conn.execute(Q["cursor"])).fetchone()
        after = int(row["last_event_id"]) if row else 0
        rows = await (await conn.execute(Q["new_events"], {"after": after, "max_age_s": self.cfg.max_age_s})).fetchall()
        for e in rows:
            if e["too_old"]:
                continue
            where = f" {e['symbol']}" if e["symbol"] else ""
            await conn.execute(Q["record"], {
                "alert_key": f"event:{e['event_id']}", "source": "event", "kind": e["kind"],
                "severity": e["severity"], "throttle_key": e["throttle_key"], "symbol": e["symbol"],
                "message": f"({e['service']}{where}) {e['message']}", "event_id": e["event_id"]})
        newest = max((int(e["event_id"]) for e in rows), default=after)
        if row is None:  # first pass ever: start from now, whatever the (age-limited) scan found
            top = await (await conn.execute(Q["max_event_id"])).fetchone()
            newest = max(newest, int(top["event_id"]) if top else 0)
        if newest != after or row is None:
            await conn.execute(Q["save_cursor"], {"last_event_id": newest})

    async def _record_conditions(self, conn: Any) -> None:
        now = {r["condition_key"]: r for r in await (await conn.execute(Q["conditions"])).fetchall()}
        for key, c in now.items():
            await conn.execute(Q["record"], {
                "alert_key": key, "source": "condition", "kind": c["kind"], "severity": c["severity"],
                "throttle_key": c["throttle_key"], "symbol": c["symbol"], "message": c["message"],
                "event_id": None})
        for a in await (await conn.execute(Q["open_conditions"])).fetchall():
            if a["alert_key"] in now:
                continue
            await conn.execute(Q["mark_resolved"], {"alert_id": a["alert_id"]})
            if a["status"] == AlertStatus.SENT:
                await conn.execute(Q["record"], {
                    "alert_key": f"{a['alert_key']}:resolved", "source": "resolved", "kind": f"{a['kind']}Resolved",
                    "severity": "info", "throttle_key": f"{a['throttle_key']}:resolved", "symbol": a["symbol"],
                    "message": f"resolved: {a['message']}", "event_id": None})

    async def _send(self, conn: Any) -> int:
        rows = await (await conn.execute(Q["pending"])).fetchall()
        if not rows:
            return 0
        recent = {r["throttle_key"] for r in await (await conn.execute(
            Q["recently_sent"], {"repeat_s": self.cfg.repeat_s})).fetchall()}
        pending = [Pending(r["alert_id"], r["kind"], r["severity"], r["throttle_key"], r["message"], r["source"],
                           r["symbol"]) for r in rows]
        plan = plan_batch(pending, recent, self.cfg.max_lines)
        if plan.suppress:
            await conn.execute(Q["mark_suppressed"], {"ids": plan.suppress})
        if not plan.send or not self.limiter.allowed():
            return 0
        ids = [a.alert_id for a in plan.send]
        try:
            await self.webhook.post(self.redact(format_text(plan, self.cfg.label)))
        except WebhookError as e:
            wait = self.limiter.record_failure(e.retry_after_s)
            await conn.execute(Q["mark_failed_attempt"], {"ids": ids, "error": self.redact(str(e)),
                                                          "max_attempts": self.cfg.max_attempts})
            logger.warning("alert post failed ({}); next try in {:.0f} s", self.redact(str(e)), wait)
            return 0
        self.limiter.record_success()
        self.sent_posts += 1
        await conn.execute(Q["mark_sent"], {"ids": ids})
        logger.info("sent {} alert(s) to {}", len(ids), self.webhook.host)
        return len(ids)
