"""A holiday end to end: Strategy (in this process, on the simulator's clock), Execution and the KIS
simulator as real processes, through one database whose calendar ``stock-manager migrate`` would
have loaded (here ``calendar_cmd.refresh``).

On 2026-12-25 (성탄절, a Friday) Strategy scans nothing and writes no intent, not even to liquidate a
position bought the day before; the simulator, on exchange-calendars' XKRX since its start, refuses
the one order that reaches it (a manual intent) with KIS's after-close answer, and Execution
records the refusal.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime

import pytest

from stock_manager import calendar_cmd
from stock_manager.services.strategy.app import StrategyApp
from stock_manager.shared import calendar as cal
from stock_manager.shared.clock import ManualClock
from stock_manager.shared.db.pool import open_pool
from stock_manager.shared.market_rules import Phase, phase_at
from tests.execution.conftest import Stack
from tests.strategy.conftest import make_app
from tests.support.pg import TestDb

PARKED = 0.001
CLOCK_RESYNC_WAIT_S = 3.0


@pytest.fixture(autouse=True)
def restore_calendar() -> Iterator[None]:
    before = cal.installed()
    yield
    cal.install(before)


@pytest.fixture
async def strategy(db: TestDb) -> AsyncIterator[tuple[StrategyApp, ManualClock]]:
    pool = await open_pool(db.url("strategy"), max_size=4, name="strategy-holiday-test")
    clock = ManualClock(datetime.fromisoformat("2026-12-24T10:00:00+09:00"))
    try:
        yield make_app(pool, clock), clock
    finally:
        await pool.close()


def park(stack: Stack, clock: ManualClock, at: str) -> None:
    got = stack.sim.clock(at, speed=PARKED)
    clock.set(datetime.fromisoformat(str(got["now"])))
    time.sleep(CLOCK_RESYNC_WAIT_S)


async def test_on_a_holiday_nothing_trades(stack: Stack, strategy: tuple[StrategyApp, ManualClock]) -> None:
    app, clock = strategy
    await calendar_cmd.refresh(stack.db.admin_url, date(2026, 12, 1), date(2027, 1, 31))
    park(stack, clock, "2026-12-24T10:00:00+09:00")
    stack.start()
    stack.intent("buy-eve", "005930", "BUY", 3)
    stack.wait(lambda: stack.sql("SELECT 1 FROM trade.orders WHERE status = 'FILLED'"), what="the buy on the 24th")

    park(stack, clock, "2026-12-25T10:00:00+09:00")
    assert stack.sim.get("/sim/clock")["phase"] == "CLOSED"
    await app.start()
    try:
        n_intents = len(stack.sql("SELECT 1 FROM trade.order_intents"))
        for hh, mm in ((10, 0), (15, 15), (15, 25), (15, 45)):
            clock.set(clock.now().replace(hour=hh, minute=mm))
            assert phase_at(clock.now()) is Phase.CLOSED
            assert not await app.scan_if_due()
            for w in app.workers:
                await w.step()
            assert await app.liquidator.round() == 0
            assert not await app.liquidator.close_round()
        assert len(stack.sql("SELECT 1 FROM trade.order_intents")) == n_intents
    finally:
        await app.stop()

    park(stack, clock, "2026-12-25T11:00:00+09:00")
    intent = stack.intent("manual-holiday", "005930", "SELL", 1)
    done = stack.wait(lambda: stack.sql("SELECT status, status_reason FROM trade.order_intents"
                                        " WHERE intent_id = %s AND status NOT IN ('NEW', 'PROCESSING')",
                                        (intent,)),
                      what="Execution's verdict on the holiday order")[0]
    assert done["status"] in ("REJECTED", "FAILED"), done
    refused = [o for o in stack.broker_orders() if o["received_ts"].startswith("2026-12-25")]
    assert refused == []  # the broker kept no order of that day
    assert "장종료" in (done["status_reason"] or ""), done
