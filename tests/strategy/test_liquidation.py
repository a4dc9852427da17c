"""Forced liquidation before the close (SC-008), unfilled remainders (EC-003), flatten on request."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from services.strategy.app import StrategyApp
from shared.clock import ManualClock
from shared.db.pool import Pool
from shared.trade_states import WorkerStatus
from tests.strategy.conftest import make_app
from tests.strategy.flow import enter, row, rows, sell, to_scan
from tests.strategy.support import add_symbol, events, intents


def logged(logs: list[dict[str, Any]], level: str, *parts: str) -> bool:
    return any(r["level"] == level and all(p in r["message"] for p in parts) for r in logs)


async def two_positions(strategy_pool: Pool, admin_pool: Pool, clock: ManualClock, **cfg: Any) -> StrategyApp:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up", price=10_500, turnover=90_000_000_000)
        await add_symbol(conn, "000660", trend="up", price=10_400, turnover=600_000_000)  # thin
    app = make_app(strategy_pool, clock, workers=2, liquidation_retry_s=0.0, **cfg)
    a, b = await to_scan(app)
    await enter(app, admin_pool, a, "005930")
    await enter(app, admin_pool, b, "000660", price=10_400)
    return app


async def cancel_rest(admin_pool: Pool, symbol: str) -> None:
    """Execution carrying out the cancel request: the order's rest is cancelled."""
    async with admin_pool.connection() as conn:
        (req,) = await (await conn.execute("SELECT * FROM trade.cancel_requests WHERE symbol = %s AND status = 'NEW'",
                                           (symbol,))).fetchall()
        await conn.execute("UPDATE trade.orders SET status = 'CANCELLED', cancelled_qty = qty - filled_qty"
                           " WHERE order_id = %s", (req["order_id"],))
        await conn.execute("UPDATE trade.cancel_requests SET status = 'DONE' WHERE request_id = %s",
                           (req["request_id"],))


async def test_sc008_every_position_is_sold_least_liquid_first_and_the_close_leaves_nothing(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock, logs: list[dict[str, Any]]) -> None:
    app = await two_positions(strategy_pool, admin_pool, clock)
    a, b = app.workers
    clock.set(clock.now().replace(hour=15, minute=14))
    assert await app.liquidator.round() == 0  # not yet
    clock.set(clock.now().replace(hour=15, minute=15))
    await a.step()  # a holding worker leaves the selling to the liquidator now
    assert await app.liquidator.round() == 2
    async with admin_pool.connection() as conn:
        sells = await intents(conn, side="SELL")
        mand = await events(conn, "MandatoryLiquidation")
    assert [(s["symbol"], s["intent_type"], s["order_type"], s["reason"]) for s in sells] == [
        ("000660", "EXIT_FULL", "MKT", "FORCED_LIQUIDATION"), ("005930", "EXIT_FULL", "MKT", "FORCED_LIQUIDATION")]
    assert [m["data"]["rank"] for m in mand] == [1, 2] and mand[0]["level"] == "WARN"
    assert await app.liquidator.round() == 0  # nothing uncovered: no duplicate sells
    # the liquid one fills; the thin one only in part
    await sell(admin_pool, "005930", price=10_480)
    await sell(admin_pool, "000660", fills=[(30, 10_300)], price=0)
    clock.advance(10)
    assert await app.liquidator.round() == 0  # the rest is still working: cancel it first
    async with admin_pool.connection() as conn:
        assert len(await events(conn, "CancelRequested")) == 1
    await cancel_rest(admin_pool, "000660")
    assert await app.liquidator.round() == 1  # the remainder, under a new action_key
    async with admin_pool.connection() as conn:
        retry = (await intents(conn, symbol="000660", side="SELL"))[-1]
    assert retry["qty"] == int(sells[0]["qty"]) - 30 and retry["action_key"].endswith(":1")
    assert logged(logs, "WARNING", "liquidation 000660: retry 1")
    await sell(admin_pool, "000660", price=10_250)
    for w in (a, b):
        await w.step()
        assert w.status is WorkerStatus.SCAN
    assert await rows(admin_pool, "SELECT * FROM trade.position_state WHERE qty <> 0") == []
    # the close: no locks, no current symbols, the summary written
    clock.set(clock.now().replace(hour=15, minute=31))
    assert await app.liquidator.close_round()
    for w in (a, b):
        await w.step()
        assert w.status is WorkerStatus.IDLE
    assert await rows(admin_pool, "SELECT * FROM trade.symbol_locks") == []
    assert await rows(admin_pool, "SELECT * FROM trade.workers WHERE current_symbol IS NOT NULL") == []
    ds = await row(admin_pool, "SELECT * FROM trade.daily_summaries")
    assert ds["trades_count"] == 2
    assert ds["notes"]["forced_exits"]["trades"] == 2
    assert ds["notes"]["thin_liquidity"]["symbols"] == ["000660"]
    async with admin_pool.connection() as conn:
        assert len(await events(conn, "PositionExited")) == 2
        assert len(await events(conn, "DailySummary")) == 1
    assert logged(logs, "WARNING", "MandatoryLiquidation", "least liquid first")
    await app.stop()


async def test_ec003_a_remainder_that_will_not_fill_is_retried_reported_and_noted(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock, logs: list[dict[str, Any]]) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "000660", trend="up", price=10_400, turnover=600_000_000)
    app = make_app(strategy_pool, clock, liquidation_retry_s=0.0, liquidation_max_retries=2)
    (w,) = await to_scan(app)
    bought = int((await enter(app, admin_pool, w, "000660", price=10_400))["qty"])
    clock.set(clock.now().replace(hour=15, minute=16))
    for part in (20, 20):
        assert await app.liquidator.round() == 1
        await sell(admin_pool, "000660", fills=[(part, 10_300)], final="CANCELLED")
        clock.advance(5)
    assert await app.liquidator.round() == 1  # a third attempt, reported
    async with admin_pool.connection() as conn:
        (inc,) = await events(conn, "LiquidationIncomplete")
    assert inc["level"] == "WARN" and inc["data"]["attempts"] == 2 and inc["data"]["remaining"] == bought - 40
    fills = await rows(admin_pool, "SELECT qty FROM trade.fills WHERE side = 'SELL'")
    assert [f["qty"] for f in fills] == [20, 20]
    clock.set(clock.now().replace(hour=15, minute=31))
    await w.step()  # still holding at the close: the lock goes, the position waits for tomorrow
    assert w.status is WorkerStatus.SCAN
    assert await app.liquidator.close_round()
    assert await rows(admin_pool, "SELECT * FROM trade.symbol_locks") == []
    ds = await row(admin_pool, "SELECT * FROM trade.daily_summaries")
    assert ds["notes"]["unfilled"][0]["symbol"] == "000660"
    assert any("unsold" in s for s in ds["notes"]["suggestions"])
    async with admin_pool.connection() as conn:
        assert (await events(conn, "PositionLeftOpen"))[0]["level"] == "ERROR"
    assert logged(logs, "WARNING", "LiquidationIncomplete", "thin liquidity")
    await app.stop()


async def test_flatten_request_liquidates_at_any_time_and_stops_entries(strategy_pool: Pool, admin_pool: Pool,
                                                                       clock: ManualClock) -> None:
    app = await two_positions(strategy_pool, admin_pool, clock)
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "035720", trend="up", price=10_300)
        await conn.execute("UPDATE trade.trading_state SET state = 'REDUCING', reason = 'FLATTEN by operator',"
                           " changed_by = 'test'")
    assert await app.liquidator.round() == 2
    async with admin_pool.connection() as conn:
        sells = await intents(conn, side="SELL")
    assert {s["reason"] for s in sells} == {"FLATTEN"}
    await sell(admin_pool, "000660", price=10_300)
    await sell(admin_pool, "005930", price=10_450)
    await app.scanner.run_once()
    for w in app.workers:
        await w.step()
        await w.step()
        assert w.status is WorkerStatus.SCAN
    async with admin_pool.connection() as conn:
        assert await intents(conn, symbol="035720") == []  # REDUCING: exits only
    await app.stop()


async def test_positions_of_dead_workers_are_sold_too(strategy_pool: Pool, admin_pool: Pool,
                                                      clock: ManualClock) -> None:
    app = await two_positions(strategy_pool, admin_pool, clock)
    async with admin_pool.connection() as conn:  # nobody holds them any more
        await conn.execute("DELETE FROM trade.symbol_locks")
    clock.set(clock.now().replace(hour=15, minute=20) + timedelta(seconds=1))  # the closing auction
    assert await app.liquidator.round() == 2
    await app.stop()


async def test_an_entry_still_unresolved_at_the_close_lets_go_of_its_lock(strategy_pool: Pool, admin_pool: Pool,
                                                                         clock: ManualClock) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up")
    app = make_app(strategy_pool, clock, intent_timeout_s=0.01)
    (w,) = await to_scan(app)
    await app.scanner.run_once()
    await w.step()
    assert w.pending is not None  # Execution never answers
    await asyncio.sleep(0.05)
    clock.set(clock.now().replace(hour=15, minute=31))
    await w.step()
    assert w.pending is None
    await w.step()
    assert w.status is WorkerStatus.IDLE
    assert await rows(admin_pool, "SELECT * FROM trade.symbol_locks") == []
    assert await rows(admin_pool, "SELECT * FROM trade.workers WHERE current_symbol IS NOT NULL") == []
    async with admin_pool.connection() as conn:
        assert (await events(conn, "EntryAbandoned"))[0]["level"] == "WARN"
    await app.stop()
