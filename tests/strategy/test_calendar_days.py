"""Strategy on the calendar's days, on PostgreSQL: the operator's override of one day through
``stock-manager calendar set``, read by Strategy at start.

A special day (10:00-16:30, as KRX trades on the CSAT day) moves the liquidation with its close:
nothing at 15:15 or 15:25, the least liquid position at 16:15.  A closed day scans nothing, writes no
entry and liquidates nothing, even holding a position from the day before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest

from stock_manager.cli import main
from stock_manager.shared import calendar as cal
from stock_manager.shared.clock import ManualClock
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.market_rules import Phase, phase_at
from tests.strategy.conftest import make_app
from tests.strategy.flow import enter, to_scan
from tests.strategy.support import T0, add_symbol, intents
from tests.support.pg import TestDb

DAY = T0.date().isoformat()  # 2026-03-10, a Tuesday


@pytest.fixture(autouse=True)
def restore_calendar() -> Iterator[None]:
    before = cal.installed()
    yield
    cal.install(before)


def at(clock: ManualClock, hh: int, mm: int, ss: int = 0) -> None:
    clock.set(clock.now().replace(hour=hh, minute=mm, second=ss, microsecond=0))


async def operator(db: TestDb, monkeypatch: pytest.MonkeyPatch, *argv: str) -> None:
    monkeypatch.setenv("DATABASE_URL", db.admin_url)
    assert await asyncio.to_thread(main, ["calendar", *argv]) == 0


async def test_on_a_special_day_the_liquidation_starts_from_that_days_close(
        db: TestDb, strategy_pool: Pool, admin_pool: Pool, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await operator(db, monkeypatch, "set", DAY, "--open", "10:00", "--close", "16:30", "--reason", "수능")
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "000660", trend="up", price=10_400, turnover=600_000_000)
    app = make_app(strategy_pool, clock, liquidation_retry_s=0.0)
    (w,) = await to_scan(app)  # start() loads the calendar, the override with it
    await enter(app, admin_pool, w, "000660", price=10_400)
    assert phase_at(clock.now().replace(hour=15, minute=25)) is Phase.CONTINUOUS
    for hh, mm in ((15, 15), (15, 20), (15, 25), (16, 14)):
        at(clock, hh, mm)
        await w.step()
        assert await app.liquidator.round() == 0, f"{hh}:{mm} is not that day's liquidation window"
    at(clock, 16, 15)  # 15 minutes before that day's 16:30 close
    await w.step()
    assert await app.liquidator.round() == 1
    async with admin_pool.connection() as conn:
        (s,) = await intents(conn, symbol="000660", side="SELL")
    assert s["order_type"] == "CLMT" and s["market_ts"] == clock.now()


async def test_on_a_closed_day_nothing_scans_enters_or_liquidates(
        db: TestDb, strategy_pool: Pool, admin_pool: Pool, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "000660", trend="up", price=10_400, turnover=600_000_000)
    app = make_app(strategy_pool, clock, liquidation_retry_s=0.0)
    (w,) = await to_scan(app)
    await enter(app, admin_pool, w, "000660", price=10_400)  # held overnight into a closed day
    next_day = T0 + timedelta(days=1)
    await operator(db, monkeypatch, "set", next_day.date().isoformat(), "--closed", "--reason", "임시휴장")
    await app.calendar.refresh()  # what the calendar loop does every few minutes
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up", price=10_500, now=next_day)  # a breakout, if it traded
        before = len(await intents(conn))
    for hh, mm in ((9, 30), (10, 0), (15, 15), (15, 25), (15, 45), (16, 30)):
        clock.set(next_day.replace(hour=hh, minute=mm))
        assert phase_at(clock.now()) is Phase.CLOSED
        assert not await app.scan_if_due()
        await w.step()
        assert await app.liquidator.round() == 0
        assert not await app.liquidator.close_round()
    async with admin_pool.connection() as conn:
        assert len(await intents(conn)) == before
