"""The close end to end: Strategy's liquidator (in this process, on the simulator's clock), Execution
as a real process and the KIS simulator as a real process, through one database.

The simulator's market is parked (a very slow clock) at the moments that matter; after each move
Execution gets a few seconds to re-read the clock before Strategy writes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from stock_manager.services.strategy.app import StrategyApp
from stock_manager.shared.clock import ManualClock
from stock_manager.shared.db.pool import open_pool
from stock_manager.shared.market_rules import Market, after_hours_limits
from tests.execution.conftest import Stack
from tests.strategy.conftest import make_app
from tests.support.pg import TestDb
from tests.support.sim import seed_symbols

PARKED = 0.001  # market seconds per wall second
CLOCK_RESYNC_WAIT_S = 3.0  # Execution re-reads the simulator's clock every 2 s
THIN = "482570"  # a KOSPI name trading about 27,000 shares a day in the simulator's universe
THIN_BASE = 23_150
DEEP = "005930"


@pytest.fixture
async def strategy(db: TestDb) -> AsyncIterator[tuple[StrategyApp, ManualClock]]:
    pool = await open_pool(db.url("strategy"), max_size=4, name="strategy-sim-test")
    clock = ManualClock(datetime.fromisoformat("2026-11-23T15:00:00+09:00"))
    app = make_app(pool, clock, liquidation_retry_s=600.0)  # no re-pricing: the sells rest as sent
    try:
        yield app, clock
    finally:
        await pool.close()


def park(stack: Stack, clock: ManualClock, at: str) -> None:
    """Move the market to ``at`` and hold it there; Strategy's clock follows."""
    got = stack.sim.clock(at, speed=PARKED)
    clock.set(datetime.fromisoformat(str(got["now"])))
    time.sleep(CLOCK_RESYNC_WAIT_S)


def orders(stack: Stack, symbol: str, side: str = "SELL") -> list[dict[str, Any]]:
    return stack.sql("SELECT * FROM trade.orders WHERE symbol = %s AND side = %s ORDER BY order_id", (symbol, side))


def ended_at_the_broker(stack: Stack, order: dict[str, Any], what: str) -> dict[str, Any]:
    """Wait until the broker's order is over (filled or expired with its session) and every fill of it
    is in our book.  KIS lists an expired remainder as unfilled, with no cancel, so our row of it
    stays open: Strategy counts only the current session's orders as selling."""
    def done() -> dict[str, Any] | None:
        (b,) = [o for o in stack.broker_orders() if o["odno"] == order["broker_order_no"]]
        ours = stack.sql("SELECT coalesce(sum(qty), 0) AS n FROM trade.fills WHERE order_id = %s",
                         (order["order_id"],))[0]["n"]
        over = b["filled_qty"] + b["expired_qty"] + b["cancelled_qty"] >= b["qty"]
        return b if over and ours == b["filled_qty"] else None
    return dict(stack.wait(done, within=30, what=what))


def buy(stack: Stack, symbol: str, qty: int) -> int:
    stack.intent(f"buy-{symbol}", symbol, "BUY", qty)
    done = stack.wait(lambda: [o for o in orders(stack, symbol, "BUY") if o["status"] in ("FILLED", "CANCELLED")],
                      within=30, what=f"the buy of {symbol}")[0]
    assert done["filled_qty"] > 0
    return int(done["filled_qty"])


async def test_a_conditional_limit_written_before_15_20_rests_through_the_auction_and_fills_at_the_close(
        stack: Stack, strategy: tuple[StrategyApp, ManualClock]) -> None:
    app, clock = strategy
    seed_symbols(stack.db.admin_url, [DEEP])
    park(stack, clock, "2026-11-23T15:05:00+09:00")
    stack.start()
    time.sleep(CLOCK_RESYNC_WAIT_S)
    held = buy(stack, DEEP, 20)
    # PriceSync's view of the book, far above the market, so the limit cannot fill before 15:20
    stack.sql("INSERT INTO market.prices_best (symbol, price, bid, ask, turnover, source, ts)"
              " VALUES (%s, 90000, 90000, 90100, 900000000000, 'WS', now())", (DEEP,))
    park(stack, clock, "2026-11-23T15:15:00+09:00")
    assert await app.liquidator.round() == 1
    (sent,) = stack.wait(lambda: [o for o in orders(stack, DEEP) if o["broker_order_no"]], what="the 02 to be sent")
    assert (sent["order_type"], sent["ord_dvsn"], sent["limit_price"]) == ("CLMT", "02", Decimal(89_800))
    assert sent["status"] == "SUBMITTED" and sent["qty"] == held  # resting: its limit is above the market
    park(stack, clock, "2026-11-23T15:25:00+09:00")
    assert await app.liquidator.round() == 0  # hands off in the auction
    park(stack, clock, "2026-11-23T15:31:00+09:00")  # past the uncross
    done = stack.wait(lambda: [o for o in orders(stack, DEEP) if o["status"] == "FILLED"], within=30,
                      what="the 02 to fill at the uncross")[0]
    broker = [o for o in stack.broker_orders() if o["odno"] == done["broker_order_no"]]
    assert broker and broker[0]["filled_qty"] == held
    assert await app.liquidator.close_round()  # flat after the uncross: the day closes
    assert stack.sql("SELECT count(*) AS n FROM trade.cancel_requests")[0]["n"] == 0
    assert len(orders(stack, DEEP)) == 1  # one sell, never cancelled or re-sent


async def test_what_the_close_leaves_sells_at_the_closing_price_then_after_hours(
        stack: Stack, strategy: tuple[StrategyApp, ManualClock]) -> None:
    app, clock = strategy
    seed_symbols(stack.db.admin_url, [THIN])
    day = "2026-11-24"  # the next day: the first test moved the market past this one's close
    park(stack, clock, f"{day}T15:05:00+09:00")
    stack.start()
    time.sleep(CLOCK_RESYNC_WAIT_S)
    held = buy(stack, THIN, 600)
    # the liquidator was down through the close: the whole position is left for the sessions after it
    park(stack, clock, f"{day}T15:40:00+09:00")
    assert await app.liquidator.round() == 1
    (post,) = stack.wait(lambda: [o for o in orders(stack, THIN) if o["broker_order_no"]], what="the 06 to be sent")
    assert (post["order_type"], post["ord_dvsn"], post["limit_price"], post["qty"]) == ("CLOSE", "06", None, held)
    park(stack, clock, f"{day}T16:00:05+09:00")  # the thin crowd took part; the rest expired at 16:00
    broker = ended_at_the_broker(stack, post, "the 06 to end")
    assert 0 < broker["filled_qty"] < held and broker["expired_qty"] == held - broker["filled_qty"]
    fills = stack.sql("SELECT qty, price FROM trade.fills WHERE order_id = %s", (post["order_id"],))
    close = fills[0]["price"]
    assert {f["price"] for f in fills} == {close}  # every post-close trade is at the closing price
    assert await app.liquidator.round() == 1
    ahs = stack.wait(lambda: [o for o in orders(stack, THIN) if o["order_type"] == "AHS" and o["broker_order_no"]],
                     what="the 07 to be sent")[0]
    lowest = after_hours_limits(int(close), THIN_BASE, Market.KOSPI)[0]
    assert (ahs["ord_dvsn"], ahs["limit_price"], ahs["qty"]) == ("07", Decimal(lowest), held - broker["filled_qty"])
    assert ahs["status"] in ("SUBMITTED", "PARTIAL", "FILLED")  # the simulator took it: inside the band
    assert await app.liquidator.round() == 0  # it rests across the 10-minute uncrosses
    park(stack, clock, f"{day}T18:00:05+09:00")  # every uncross has run; what is left expired
    after = ended_at_the_broker(stack, ahs, "the 07 to end")
    assert await app.liquidator.close_round()
    ds = stack.sql("SELECT notes FROM trade.daily_summaries WHERE trade_date = %s", (day,))[0]["notes"]
    (trip,) = ds["liquidation"]["trips"]
    assert trip["symbol"] == THIN and trip["thin"] and "CLOSE" in trip["by_type"]
    assert stack.sql("SELECT count(*) AS n FROM trade.cancel_requests")[0]["n"] == 0
    left = held - broker["filled_qty"] - after["filled_qty"]
    open_rows = stack.sql("SELECT qty FROM trade.position_state WHERE symbol = %s AND status = 'OPEN'", (THIN,))
    assert [r["qty"] for r in open_rows] == ([left] if left else [])
    if left:  # whatever no session took stays open, reported
        (inc,) = stack.sql("SELECT * FROM ops.events WHERE kind = 'LiquidationIncomplete'")
        assert inc["data"]["stage"] == "DAY_END" and inc["data"]["remaining"] == left
