"""PriceSync put together: the tasks, what each one owns, and how they are wired.

* ``WsFeed.run``   — the adapter's events: prints to ingest, notices to the relay, status.
* ``Ingest.run``   — the one writer of ticks, prices, candles and freshness.
* ``NoticeRelay``  — notices into ``market.broker_notices``, one small transaction each.
* ``_plan_loop``   — reads what Strategy watches, plans the 41 registrations, feeds the poller.
* ``Poller``       — REST for what the stream does not cover, then the universe sweep.
* ``_status_loop`` — ``market.feed_status`` and the heartbeat's info.
* ``_daily_loop``  — at each new KST trade date: symbol master, tick partitions.
* ``Reporter``     — ``ops.events`` without making anyone wait.

Everything runs in one asyncio TaskGroup: an unexpected error in any task ends the process and
the supervisor restarts it (expected ones — the database or KIS going away — are retried inside
each task).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import psycopg
from loguru import logger

from stock_manager.shared.clock import Clock, kst
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.kis.endpoints import WS_NOTICE_TR, KisEnv
from stock_manager.shared.kis.errors import KisError, ServiceNotFound
from stock_manager.shared.kis.models import Quote
from stock_manager.shared.kis.ws import Subscription
from stock_manager.shared.settings import Mode

from .config import PriceSyncConfig
from .feed import WsClient, WsFeed
from .ingest import Ingest, trade_dates_ahead
from .master import SymbolMaster, fetch_master_files, fetch_sim_symbols
from .metrics import IngestMetrics
from .planner import PlannerState, WatchClass, WatchItem, merge_watch, orderbook_symbols, plan
from .poller import Poller, PollScheduler, QuoteSource
from .queries import Q
from .relay import NoticeRelay
from .report import Reporter


class WsSession(WsClient, Protocol):
    """The adapter as PriceSync drives it (start/stop on top of what the feed reads)."""

    def start(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class Deps:
    """What PriceSync needs from the process frame; tests build it by hand."""

    pool: Pool
    clock: Clock
    conninfo: str
    rest: QuoteSource
    ws: WsSession
    env: KisEnv
    mode: Mode
    rest_url: str
    rate_limit: int
    emit: Callable[..., Awaitable[None]]
    info: dict[str, Any]
    set_status: Callable[[str], None] | None = None
    # the market's most traded symbols, best first (KIS volume ranking), or None where unavailable
    most_active: Callable[[], Awaitable[list[str]]] | None = None


class PriceSync:
    def __init__(self, deps: Deps, cfg: PriceSyncConfig) -> None:
        self.deps = deps
        self.cfg = cfg
        self.clock = deps.clock
        self.report = Reporter(deps.emit)
        recording = cfg.recording(deps.mode)
        self.master = SymbolMaster(deps.pool, deps.clock, self.report,
                                   record_as=deps.mode.value if recording else None)
        self.metrics = IngestMetrics()
        self.ingest = Ingest(
            deps.conninfo,
            deps.clock,
            rules=cfg.rules(),
            ws_health=lambda: self.feed.health(),
            config=cfg.ingest(deps.mode),
            metrics=self.metrics,
        )
        self.relay = NoticeRelay(deps.pool, deps.clock, WS_NOTICE_TR[deps.env], report=self.report)
        self.notice_sub = Subscription.notices(deps.env)
        self.pcfg = cfg.planner()
        self.pstate = PlannerState()
        self._status_dirty = asyncio.Event()
        self.feed = WsFeed(
            deps.ws,
            self.ingest,
            self.relay,
            clock=deps.clock,
            report=self.report,
            on_refused=lambda sym: self.pstate.refused(sym, time.monotonic(), self.pcfg),
            on_status=self._status_dirty.set,
        )
        self.scheduler = PollScheduler(cfg.poll(deps.rate_limit), cfg.rules())
        self.poller = Poller(
            deps.rest,
            self.scheduler,
            on_quote=self._on_quote,
            streamed=lambda: self.feed.health().active,
            last_seen=self.ingest.last_seen,
            speed=lambda: deps.clock.speed,
            workers=cfg.poll_workers,
        )
        self.active: list[str] = []
        self._ranked_by_master = False  # no volume ranking here: the master's most traded names instead
        self.watch: list[WatchItem] = []
        self.desired: frozenset[Subscription] = frozenset()
        self._notice_gap = False
        self._day = kst(deps.clock.now()).date()

    # --- start and run ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Everything that must hold before prices flow: old verdicts void, master, partitions."""
        async with self.deps.pool.connection() as conn:
            await conn.execute(Q["stale_all_at_start"], {"checked_ts": self.clock.now()})
        await self._load_master()
        await self.ingest.ensure_days(*trade_dates_ahead(self.clock.now()))
        self.desired = frozenset({self.notice_sub})
        self.deps.ws.replace(self.desired)
        self.deps.ws.start()

    async def _load_master(self) -> None:
        deps = self.deps
        if deps.mode is Mode.SIM:
            await self.master.load(lambda: fetch_sim_symbols(deps.rest_url), "simulator /sim/symbols")
        else:
            urls = self.cfg.master_url_list
            await self.master.load(
                lambda: fetch_master_files(urls, http_timeout_s=self.cfg.master_timeout_s), "KIS master files"
            )
        self.ingest.prev_range = self.master.prev_range()
        self.scheduler.universe = sorted(self.master.known)
        if self._ranked_by_master:
            self.active = self.master.most_traded[: self.cfg.most_active_n]

    async def run(self) -> None:
        await self.start()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.report.run(), name="report")
                tg.create_task(self.ingest.run(), name="ingest")
                tg.create_task(self.relay.run(), name="relay")
                tg.create_task(self.feed.run(), name="ws-feed")
                tg.create_task(self._plan_loop(), name="plan")
                tg.create_task(self._active_loop(), name="most-active")
                tg.create_task(self.poller.run(), name="poll")
                tg.create_task(self._status_loop(), name="status")
                tg.create_task(self._daily_loop(), name="daily")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.ingest.flush())

    # --- planning -------------------------------------------------------------------------------------

    async def _read_watch(self) -> list[WatchItem]:
        now = self.clock.now()
        params = {"now": now, "candidates_since": now - timedelta(seconds=self.cfg.candidate_window_s)}
        async with self.deps.pool.connection() as conn:
            rows = await (await conn.execute(Q["watch_set"], params)).fetchall()
        active = [(s, int(WatchClass.ACTIVE), i) for i, s in enumerate(self.active)]
        return merge_watch([*((r["symbol"], r["cls"], r["rank"]) for r in rows), *active])

    async def plan_once(self) -> None:
        try:
            self.watch = await self._read_watch()
        except psycopg.OperationalError as exc:
            logger.warning("watch set unavailable ({}); keeping the last plan", type(exc).__name__)
            return
        self.scheduler.watch = self.watch
        if not self.master.complete:
            self.scheduler.seed |= {w.symbol for w in self.watch if w.symbol not in self.master.known}
        result = plan(self.watch, self.pstate, time.monotonic(), self.pcfg)
        books = orderbook_symbols(result.desired, self.watch, self.cfg.orderbook_slots)
        subs = {Subscription.trades(s) for s in result.desired} | {Subscription.orderbook(s) for s in books}
        if not self._notice_window():
            subs.add(self.notice_sub)
        desired = frozenset(subs)
        if desired != self.desired:
            self.deps.ws.replace(desired)
            self.desired = desired
        if result.added or result.removed:
            self.report.post(
                "SubscriptionsChanged",
                f"+{len(result.added)} -{len(result.removed)} ({len(result.desired)} trade streams, "
                f"{len(result.wanted_but_unplaced)} watched symbols on REST)",
                added=list(result.added),
                removed=list(result.removed),
                streams=len(result.desired),
                polled=len(result.wanted_but_unplaced),
            )

    def _notice_window(self) -> bool:
        """True for one round after a refused notice subscription, so the adapter asks again.

        The adapter does not retry a refused registration while it stays desired; leaving it out
        of one plan and back in the next is the only way to ask again through its public API.
        """
        st = self.feed.state
        if self._notice_gap:
            self._notice_gap = False
            st.notice_refused_mono = None
            return False
        if st.notice_refused_mono is not None and time.monotonic() - st.notice_refused_mono >= self.cfg.notice_retry_s:
            self._notice_gap = True
            return True
        return False

    async def _active_loop(self) -> None:
        """Keep the market's most traded names in the watch set (lowest class), so that streams
        no position, lock or candidate wants still bring ticks and candles to scan — without them a
        scanner that needs candles would never see its first signal."""
        if self.deps.most_active is None:
            return
        while True:
            try:
                self.active = (await self.deps.most_active())[: self.cfg.most_active_n]
            except ServiceNotFound:
                # paper KIS answers MCA00124: the master's prior day stands in, reloaded with it each day
                self._ranked_by_master = True
                self.active = self.master.most_traded[: self.cfg.most_active_n]
                logger.info("volume ranking is not offered here (paper); streams follow Strategy's tables and the "
                            "master's {} most traded names of the prior day", len(self.active))
                return
            except KisError as exc:
                logger.warning("volume ranking failed: {}", exc)
            await asyncio.sleep(max(self.cfg.most_active_refresh_s / max(self.clock.speed, 1.0), 5.0))

    async def _plan_loop(self) -> None:
        while True:
            await self.plan_once()
            await asyncio.sleep(self.cfg.plan_interval_s)

    # --- polling ----------------------------------------------------------------------------------------

    async def _on_quote(self, symbol: str, quote: Quote) -> None:
        self.ingest.add_quote(symbol, quote)
        if self.master.changed(symbol, quote):
            await self.master.note_quote(symbol, quote)
            if symbol not in self.scheduler.universe:
                self.scheduler.universe.append(symbol)

    # --- status -----------------------------------------------------------------------------------------

    async def write_status(self) -> None:
        st = self.feed.state
        ws = self.deps.ws
        health = self.feed.health()
        trade_subs = len(health.active)
        stats = self.poller.stats
        rest_ok = stats.last_ok_mono is not None and time.monotonic() - stats.last_ok_mono < 15.0
        last_rest = (
            self.clock.now() - timedelta(seconds=(time.monotonic() - stats.last_ok_mono) * self.clock.speed)
            if stats.last_ok_mono is not None
            else None
        )
        async with self.deps.pool.connection() as conn:
            await conn.execute(Q["upsert_feed_status"], {
                "feed": "ws",
                "connected": health.connected,
                "notices_subscribed": health.connected and st.notices_subscribed
                and self.notice_sub in ws.active,
                "subscriptions": len(ws.active) if health.connected else 0,
                "last_frame_ts": self.feed.last_frame_ts(),
                "last_connect_ts": st.last_connect,
                "last_disconnect_ts": st.last_disconnect,
                "reason": st.reason,
            })
            await conn.execute(Q["upsert_feed_status"], {
                "feed": "rest",
                "connected": rest_ok,
                "notices_subscribed": False,
                "subscriptions": 0,
                "last_frame_ts": last_rest,
                "last_connect_ts": None,
                "last_disconnect_ts": None,
                "reason": stats.last_error if not rest_ok else None,
            })
        m = self.metrics
        self.deps.info.update(
            ws_connected=health.connected,
            subscriptions=len(ws.active) if health.connected else 0,
            trade_streams=trade_subs,
            notices_subscribed=st.notices_subscribed,
            watched=len(self.watch),
            queue_depth=self.ingest.pending,
            ticks_per_s=round(m.rate(), 1),
            latency_p50_ms=m.window.percentile(50),
            latency_p99_ms=m.window.percentile(99),
            batch_ms=round(m.last_batch_ms, 1),
            ticks_written=m.ticks_written,
            late_ticks=m.late_ticks,
            dropped_ticks=m.dropped,
            polls_ok=stats.ok,
            poll_errors=stats.errors,
            stale=self.ingest.stale_count(),
            notices_relayed=self.relay.relayed,
            notice_backlog=self.relay.backlog,
            malformed_frames=st.malformed,
        )
        m.window.reset()
        if self.deps.set_status is not None:
            self.deps.set_status("RUNNING" if health.connected else "DEGRADED")

    async def _status_loop(self) -> None:
        while True:
            try:
                await self.write_status()
            except psycopg.OperationalError as exc:
                logger.warning("feed status not written: {}", type(exc).__name__)
            self._status_dirty.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_dirty.wait(), self.cfg.status_interval_s)

    async def _daily_loop(self) -> None:
        while True:
            await asyncio.sleep(5.0)
            today = kst(self.clock.now()).date()
            if today == self._day:
                continue
            self._day = today
            logger.info("new trade date {}: reloading the symbol master, adding tick partitions", today)
            try:
                await self._load_master()
                self.ingest.request_days(*trade_dates_ahead(self.clock.now()))
            except psycopg.OperationalError as exc:
                logger.warning("daily roll postponed: {}", type(exc).__name__)
                self._day = today - timedelta(days=1)
