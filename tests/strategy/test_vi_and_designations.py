"""Strategy on a real database around VIs and designations, PriceSync and Execution played through
their tables: the scan refuses a designated symbol, a VI or a price near its trigger with the reason
kept; an entry is refused when a VI came after the scan; nothing resting in a VI auction is cancelled
(the liquidator's re-price, the worker's entry timeout); a stop loss in a VI is written once and left."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from stock_manager.services.strategy.app import StrategyApp
from stock_manager.services.strategy.workers import Worker
from stock_manager.shared.clock import ManualClock
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.trade_states import WorkerStatus
from tests.strategy.conftest import make_app
from tests.strategy.flow import enter, rows, to_scan
from tests.strategy.support import T0, add_symbol, events, execute, intents, set_price

VI_SQL = """
INSERT INTO market.vi_state (symbol, state, reference, since, source, ts) VALUES (%s, %s, %s, %s, 'WS', %s)
ON CONFLICT (symbol) DO UPDATE SET state = EXCLUDED.state, reference = EXCLUDED.reference, since = EXCLUDED.since,
    ts = EXCLUDED.ts
"""


async def vi(admin: Pool, symbol: str, state: str, at: datetime, reference: int | None = 10_000) -> None:
    """PriceSync read a VI state for ``symbol`` at ``at``."""
    async with admin.connection() as conn:
        await conn.execute(VI_SQL, (symbol, state, reference, at, at))


async def designate(admin: Pool, symbol: str, designation: str | None, warn: str | None = None,
                    sltr: bool = False) -> None:
    async with admin.connection() as conn:
        await conn.execute("UPDATE market.symbols SET designation = %s, warn_code = %s, liquidation_trading = %s"
                           " WHERE symbol = %s", (designation, warn, sltr, symbol))


async def one_worker(strategy_pool: Pool, admin: Pool, clock: ManualClock, symbol: str = "005930", *,
                     price: int = 10_500, turnover: int = 5_000_000_000, **cfg: Any) -> tuple[StrategyApp, Worker]:
    """A rising ``symbol`` and an app with one worker, scanning."""
    async with admin.connection() as conn:
        await add_symbol(conn, symbol, trend="up", price=price, turnover=turnover)
    app = make_app(strategy_pool, clock, **cfg)
    (w,) = await to_scan(app)
    return app, w


async def cancels(admin: Pool, symbol: str) -> list[dict[str, Any]]:
    return await rows(admin, "SELECT * FROM trade.cancel_requests WHERE symbol = %s", symbol)


async def test_the_scan_refuses_designations_and_vis_and_says_why(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock) -> None:
    async with admin_pool.connection() as conn:
        for sym in ("005930", "000660", "035720", "051910", "068270"):
            await add_symbol(conn, sym, trend="up", price=10_500)
    await designate(admin_pool, "005930", "51")  # 관리종목
    await designate(admin_pool, "000660", "54", sltr=True)  # 투자주의 is allowed, 정리매매 is not
    await vi(admin_pool, "035720", "STATIC", T0 - timedelta(seconds=30))
    await vi(admin_pool, "051910", "NONE", T0 - timedelta(minutes=5), reference=9_600)  # 10,500 is near 10,560
    await vi(admin_pool, "068270", "DYNAMIC", T0 - timedelta(days=1))  # yesterday's row says nothing today
    app = make_app(strategy_pool, clock)
    (w,) = await to_scan(app)
    res = await app.scanner.run_once()
    assert dict(res.outcome.refused) == {"005930": ("designated_51",), "000660": ("liquidation_trading",),
                                         "035720": ("vi_active",), "051910": ("near_static_vi",)}
    assert [e.symbol for e in res.signals] == ["068270"]
    snap = res.rows["068270"]
    assert snap.vi == "NONE" and snap.vi_since is None
    assert res.rows["005930"].designation == "51" and res.rows["035720"].vi == "STATIC"
    async with admin_pool.connection() as conn:
        (ev,) = await events(conn, "CandidateScanned")
    assert ev["data"]["refused"] == {"005930": ["designated_51"], "000660": ["liquidation_trading"],
                                     "035720": ["vi_active"], "051910": ["near_static_vi"]}
    assert ev["data"]["excluded"]["designated_51"] == 1
    await w.step()
    async with admin_pool.connection() as conn:
        assert [i["symbol"] for i in await intents(conn, intent_type="ENTRY")] == ["068270"]
    await app.stop()


async def test_a_vi_after_the_scan_refuses_the_entry(strategy_pool: Pool, admin_pool: Pool,
                                                     clock: ManualClock) -> None:
    app, w = await one_worker(strategy_pool, admin_pool, clock)
    res = await app.scanner.run_once()
    assert [e.symbol for e in res.signals] == ["005930"]
    await vi(admin_pool, "005930", "AUCTION", T0)  # the stream said so a moment later
    await w.step()
    async with admin_pool.connection() as conn:
        assert await intents(conn, intent_type="ENTRY") == []
        (ev,) = await events(conn, "EntryRefused")
    assert ev["data"]["refused_by"] == ["vi_active"] and ev["symbol"] == "005930"
    assert await rows(admin_pool, "SELECT * FROM trade.symbol_locks") == []
    await app.stop()


async def test_the_liquidator_leaves_a_sell_resting_in_a_vi_auction(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock) -> None:
    app, w = await one_worker(strategy_pool, admin_pool, clock, "000660", price=10_400, turnover=600_000_000,
                              liquidation_retry_s=0.0)
    await enter(app, admin_pool, w, "000660", price=10_400)
    clock.set(T0.replace(hour=15, minute=15))
    assert await app.liquidator.round() == 1
    async with admin_pool.connection() as conn:
        (sell,) = await intents(conn, symbol="000660", side="SELL")
        await execute(conn, sell["intent_id"], at=clock.now())  # it rests, unfilled
    await vi(admin_pool, "000660", "STATIC", clock.now())
    for s in (10, 40, 70):
        clock.set(T0.replace(hour=15, minute=16, second=s % 60) + timedelta(minutes=s // 60))
        assert await app.liquidator.round() == 0
    assert await cancels(admin_pool, "000660") == []  # never cancelled, so never re-sent
    clock.set(T0.replace(hour=15, minute=18))
    await vi(admin_pool, "000660", "NONE", clock.now())  # the VI is over: re-pricing resumes
    assert await app.liquidator.round() == 0
    (req,) = await cancels(admin_pool, "000660")
    assert req["reason"] == "liquidation: unfilled, re-price"
    await app.stop()


async def test_an_entry_rest_is_not_cancelled_in_a_vi(strategy_pool: Pool, admin_pool: Pool,
                                                      clock: ManualClock) -> None:
    app, w = await one_worker(strategy_pool, admin_pool, clock, intent_timeout_s=0.001)
    await app.scanner.run_once()
    await w.step()
    async with admin_pool.connection() as conn:
        (entry,) = await intents(conn, intent_type="ENTRY")
        await execute(conn, entry["intent_id"], [(10, 10_500)], at=clock.now())  # partly filled, the rest works
    await vi(admin_pool, "005930", "DYNAMIC", clock.now())
    await asyncio.sleep(0.01)  # past the entry's timeout
    await w.step()
    await w.step()
    assert w.status is WorkerStatus.SCAN and w.pending is not None  # waiting for the VI's uncross
    assert await cancels(admin_pool, "005930") == []
    await vi(admin_pool, "005930", "NONE", clock.now() + timedelta(minutes=2))
    await w.step()
    assert w.status is WorkerStatus.HOLD
    (req,) = await cancels(admin_pool, "005930")
    assert req["reason"] == "entry timeout: cancel the unfilled rest"
    await app.stop()


async def test_a_stop_loss_in_a_vi_is_written_once_and_left(strategy_pool: Pool, admin_pool: Pool,
                                                            clock: ManualClock) -> None:
    app, w = await one_worker(strategy_pool, admin_pool, clock, intent_timeout_s=0.001)
    await enter(app, admin_pool, w, "005930")
    clock.set(T0 + timedelta(minutes=1))
    await vi(admin_pool, "005930", "STATIC", clock.now(), reference=10_500)  # a static VI down
    async with admin_pool.connection() as conn:
        await set_price(conn, "005930", 9_450, now=clock.now())
    await w.step()
    async with admin_pool.connection() as conn:
        (stop,) = await intents(conn, symbol="005930", side="SELL")
        assert stop["reason"] == "STOP_LOSS" and stop["order_type"] == "MKT"
        await execute(conn, stop["intent_id"], at=clock.now())  # Execution sent it: it rests in the auction
    for k in range(2, 6):
        clock.set(T0 + timedelta(minutes=1, seconds=10 * k))
        async with admin_pool.connection() as conn:
            await set_price(conn, "005930", 9_400, now=clock.now())
        await w.step()
    async with admin_pool.connection() as conn:
        assert len(await intents(conn, symbol="005930", side="SELL")) == 1  # written once
    assert await cancels(admin_pool, "005930") == []  # and left to the auction
    assert w.status is WorkerStatus.HOLD and w.pending is not None
    await app.stop()
