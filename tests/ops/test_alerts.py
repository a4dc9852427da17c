"""The alert loop against a real database (as sm_dashboard) and a local webhook receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.types.json import Jsonb

from stock_manager.dashboard.alerts import AlertConfig, Alerter, RateLimiter, Webhook
from stock_manager.shared.db.pool import Pool, open_pool
from stock_manager.shared.logging import Redactor
from tests.ops.support import Receiver
from tests.support.pg import TestDb


@dataclass
class FakeTime:
    t: float = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
async def writer(seeded: TestDb) -> AsyncIterator[Pool]:
    pool = await open_pool(seeded.url("dashboard"), max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


def _alerter(pool: Pool, receiver: Receiver, clock: FakeTime | None = None, secrets: tuple[str, ...] = (),
             **cfg: float) -> Alerter:
    redact = Redactor()
    redact.add(secrets)
    config = AlertConfig(label="test", **cfg)  # type: ignore[arg-type]
    limiter = RateLimiter(config.min_interval_s, config.max_per_min, now=clock or FakeTime())
    return Alerter(pool, Webhook(receiver.url), config, redact, limiter)


def _event(db: TestDb, kind: str, message: str, symbol: str | None = None, level: str = "WARN",
           age_s: float = 0, **data: str) -> None:
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        conn.execute("INSERT INTO ops.events (service, db_role, level, kind, message, symbol, data, ts) VALUES "
                     "('strategy', 'sm_strategy', %s, %s, %s, %s, %s, clock_timestamp() - make_interval(secs => %s))",
                     (level, kind, message, symbol, Jsonb(data), age_s))


def _state(db: TestDb, state: str) -> None:
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        conn.execute("UPDATE trade.trading_state SET state = %s, reason = 'ops test', changed_by = 'test', "
                     "changed_ts = clock_timestamp()", (state,))


async def test_each_alert_goes_out_once_and_repeats_are_suppressed(
        seeded: TestDb, writer: Pool, receiver: Receiver) -> None:
    clock = FakeTime()
    a = _alerter(writer, receiver, clock)
    assert await a.run_once() == 6
    (text,) = receiver.texts()
    for kind in ("ServiceDown", "StalePrice", "RiskViolation", "ReconcileCorrection", "InDoubtResolved",
                 "UnknownBrokerOrder"):
        assert f"*{kind}*" in text
    assert text.startswith("[stock-manager test] 6 alerts")
    clock.t += 5
    assert await a.run_once() == 0 and len(receiver.posts) == 1

    _event(seeded, "RiskViolation", "091990: daily loss limit reached; entry blocked", "091990",
           rule="daily_loss_limit")  # the same rule and symbol within the repeat window
    _event(seeded, "RiskViolation", "005930: max positions reached; entry blocked", "005930", rule="max_positions")
    clock.t += 5
    assert await a.run_once() == 1
    assert "005930: max positions" in receiver.texts()[-1] and "091990" not in receiver.texts()[-1]
    with psycopg.connect(seeded.admin_url) as conn:
        rows: dict[str, int] = dict(
            conn.execute("SELECT status, count(*) FROM monitor.alert_log GROUP BY status").fetchall())
    assert rows == {"SENT": 7, "SUPPRESSED": 1}
    await a.webhook.close()


async def test_a_condition_alerts_once_and_resolves_once(seeded: TestDb, writer: Pool, receiver: Receiver) -> None:
    clock = FakeTime()
    a = _alerter(writer, receiver, clock)
    await a.run_once()
    _state(seeded, "HALTED")
    clock.t += 5
    assert await a.run_once() == 1
    assert "*TradingHalted* trading state is HALTED" in receiver.texts()[-1]
    assert "ops test" in receiver.texts()[-1]
    clock.t += 5
    assert await a.run_once() == 0
    _state(seeded, "ACTIVE")
    clock.t += 5
    assert await a.run_once() == 1
    assert "*TradingHaltedResolved* resolved: trading state is HALTED" in receiver.texts()[-1]
    clock.t += 5
    assert await a.run_once() == 0
    assert len(receiver.posts) == 3
    await a.webhook.close()


async def test_posts_are_rate_limited_and_nothing_is_dropped(seeded: TestDb, writer: Pool, receiver: Receiver) -> None:
    clock = FakeTime()
    a = _alerter(writer, receiver, clock, max_lines=2, min_interval_s=10)
    assert await a.run_once() == 2
    assert await a.run_once() == 0  # within min_interval_s
    for expected in (2, 2, 0):
        clock.t += 10
        assert await a.run_once() == expected
    assert len(receiver.posts) == 3
    await a.webhook.close()


async def test_a_failing_webhook_is_retried_then_given_up(seeded: TestDb, writer: Pool, receiver: Receiver) -> None:
    clock = FakeTime()
    a = _alerter(writer, receiver, clock, max_attempts=2)
    receiver.status = 500
    assert await a.run_once() == 0
    assert await a.run_once() == 0  # backing off: no second post yet
    assert len(receiver.paths) == 1
    clock.t += 60
    assert await a.run_once() == 0
    assert len(receiver.paths) == 2
    with psycopg.connect(seeded.admin_url) as conn:
        rows = conn.execute("SELECT status, attempts, last_error FROM monitor.alert_log").fetchall()
    assert {r[0] for r in rows} == {"FAILED"} and {r[1] for r in rows} == {2}
    assert all("HTTP 500" in r[2] and "SECRET" not in r[2] for r in rows)
    await a.webhook.close()


async def test_secrets_are_redacted_and_old_events_are_not_alerted(
        seeded: TestDb, writer: Pool, receiver: Receiver) -> None:
    _event(seeded, "ReconcileMismatch", "fills exceed the broker's for key SUPERSECRET123", level="ERROR")
    _event(seeded, "ReconcileCorrection", "an hour and a half ago", age_s=5400)
    a = _alerter(writer, receiver, secrets=("SUPERSECRET123",))
    await a.run_once()
    (text,) = receiver.texts()
    assert "*ReconcileMismatch*" in text and "***" in text and "SUPERSECRET123" not in text
    assert "an hour and a half ago" not in text
    await a.webhook.close()


async def test_two_dashboards_send_each_alert_once(seeded: TestDb, writer: Pool, receiver: Receiver) -> None:
    other = await open_pool(seeded.url("dashboard"), max_size=2)
    try:
        a, b = _alerter(writer, receiver), _alerter(other, receiver)
        sent = await asyncio.gather(a.run_once(), b.run_once())
        assert sorted(sent) == [0, 6]
        assert await b.run_once() == 0 and await a.run_once() == 0
        assert len(receiver.posts) == 1
        await a.webhook.close()
        await b.webhook.close()
    finally:
        await other.close()
