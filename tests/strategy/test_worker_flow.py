"""The worker lifecycle on the real database, with PriceSync and Execution played through their tables.

SC-001 start, SC-002 scan, SC-005 entry, SC-006 monitoring, SC-007 exit, SC-010 two workers,
SC-011 daily summary, EC-002 rejected order, EC-004 risk limit; HALTED and REDUCING obeyed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stock_manager.services.strategy.app import StrategyApp
from stock_manager.shared.clock import ManualClock
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.trade_states import WorkerStatus
from tests.strategy.conftest import make_app
from tests.strategy.flow import enter, row, rows, sell, to_scan
from tests.strategy.support import add_symbol, events, execute, intents, set_price

D = Decimal


def logged(logs: list[dict[str, Any]], level: str, *parts: str) -> bool:
    return any(r["level"] == level and all(p in r["message"] for p in parts) for r in logs)


async def test_sc001_start_registers_idle_then_scans(app: StrategyApp, admin_pool: Pool,
                                                     logs: list[dict[str, Any]]) -> None:
    await app.start()
    (w,) = app.workers
    assert (await row(admin_pool, "SELECT status, pid FROM trade.workers WHERE worker_id = %s", w.worker_id)) == {
        "status": "IDLE", "pid": w.pid}
    await w.step()
    r = await row(admin_pool, "SELECT status, current_symbol FROM trade.workers WHERE worker_id = %s", w.worker_id)
    assert r == {"status": "SCAN", "current_symbol": None}
    hist = await rows(admin_pool, "SELECT from_status, to_status FROM trade.worker_history WHERE worker_id = %s"
                      " ORDER BY history_id", w.worker_id)
    assert [(h["from_status"], h["to_status"]) for h in hist] == [("NONE", "IDLE"), ("IDLE", "SCAN")]
    async with admin_pool.connection() as conn:
        (started,) = await events(conn, "WorkerStarted")
        (conf,) = await events(conn, "StrategyConfigured")
    assert started["worker_id"] == w.worker_id and started["data"]["pid"] == w.pid
    assert started["data"]["status"] == "IDLE"
    assert conf["data"]["risk"] == {"capital_limit": "10000000", "daily_loss_limit": "300000", "max_positions": 5,
                                    "max_symbol_exposure": "3000000", "liquidation_lead_min": 15.0,
                                    "liquidation_last_lead_min": 11.0, "after_hours": True}
    params = await rows(admin_pool, "SELECT params_version, strategy_version FROM trade.strategy_params")
    assert params == [{"params_version": "breakout-v1@2026-03-10", "strategy_version": "breakout-v1"}]
    assert logged(logs, "INFO", "strategy settings loaded", "daily_loss_limit")
    assert logged(logs, "INFO", w.worker_id, str(w.pid), "IDLE -> SCAN")
    # a clean stop: EXIT, recorded
    await app.stop()
    r = await row(admin_pool, "SELECT status FROM trade.workers WHERE worker_id = %s", w.worker_id)
    assert r["status"] == "EXIT"
    async with admin_pool.connection() as conn:
        assert (await events(conn, "WorkerStopped"))[0]["data"]["status"] == "EXIT"


async def test_sc002_scan_filters_and_stores_candidates_with_their_inputs(app: StrategyApp, admin_pool: Pool,
                                                                          logs: list[dict[str, Any]]) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up")
        await add_symbol(conn, "000660", trend="flat")
        await add_symbol(conn, "035720", trend="up", halted=True)
        await add_symbol(conn, "068270", trend="up", volume=100)
        await add_symbol(conn, "051910", trend="up", spread_ticks=20)
        await add_symbol(conn, "207940", trend="up", price_age_s=600)
    await app.start()
    assert await app.scan_if_due()
    cands = await rows(admin_pool, "SELECT symbol, signal, inputs, filters, params_version, scan_id"
                       " FROM trade.candidates ORDER BY symbol")
    by = {c["symbol"]: c for c in cands}
    assert set(by) == {"005930", "000660"}  # filtered symbols are counted, not stored
    assert by["005930"]["signal"] is True and by["000660"]["signal"] is False
    inputs = by["005930"]["inputs"]
    assert inputs["breakout_pct"] > 0 and inputs["trend_pct"] > 0 and inputs["sma_short"] and inputs["sma_long"]
    assert inputs["volume"] == 500_000 and inputs["turnover"] == "5000000000" and inputs["spread_pct"] is not None
    assert by["005930"]["params_version"] == "breakout-v1@2026-03-10"
    async with admin_pool.connection() as conn:
        (ev,) = await events(conn, "CandidateScanned")
    d = ev["data"]
    assert (d["universe"], d["passed"], d["signals"], d["top"]) == (6, 2, 1, ["005930"])
    assert d["excluded"] == {"halted": 1, "min_volume": 1, "spread": 1, "stale": 1}
    assert str(by["005930"]["scan_id"]) == d["scan_id"]
    assert logged(logs, "INFO", "scan poll started") and logged(logs, "INFO", "scan filters", "halted")


async def test_sql_indicators_match_the_reference_definitions(app: StrategyApp, admin_pool: Pool) -> None:
    from stock_manager.services.strategy.config import Params
    from stock_manager.services.strategy.rules.indicators import recent_high, sma
    from stock_manager.services.strategy.strategies.breakout import scan_row
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up")
    await app.start()
    res = await app.scanner.run_once()
    snap = res.rows["005930"]
    bars = await rows(admin_pool, "SELECT close, high FROM market.candles WHERE symbol = '005930'"
                      " ORDER BY bucket_ts DESC")
    closes, highs = [b["close"] for b in bars], [b["high"] for b in bars]
    assert [c.close for c in snap.candles] == closes[:20]  # the newest max(sma_long, breakout_bars + 1) bars
    r = scan_row(snap, Params())
    assert r.n_bars == 20
    assert r.sma_short == sma(closes, 5) and r.sma_long == sma(closes, 20)
    assert r.recent_high == recent_high(highs, 10)


async def test_sc005_entry_fills_and_the_worker_holds(app: StrategyApp, admin_pool: Pool,
                                                      logs: list[dict[str, Any]]) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up")
    (w,) = await to_scan(app)
    await app.scanner.run_once()
    await w.step()
    async with admin_pool.connection() as conn:
        (i,) = await intents(conn)
    # sized against the upper limit (13,000), not the price: KIS reserves a market buy at the upper limit
    assert (i["side"], i["intent_type"], i["order_type"], i["qty"], i["limit_price"]) == ("BUY", "ENTRY", "MKT", 76,
                                                                                          None)
    assert i["action_key"] == f"entry:{w.worker_id}:005930:2026-03-10:1"
    assert (i["strategy_version"], i["params_version"], i["worker_id"]) == ("breakout-v1", "breakout-v1@2026-03-10",
                                                                            w.worker_id)
    r = await row(admin_pool, "SELECT status, current_symbol FROM trade.workers WHERE worker_id = %s", w.worker_id)
    assert r == {"status": "SCAN", "current_symbol": "005930"}  # waiting for Execution with the lock held
    await w.step()
    assert w.status.value == "SCAN"  # nothing executed yet: no position, no HOLD
    async with admin_pool.connection() as conn:
        await execute(conn, i["intent_id"], [(40, 10_500), (36, 10_510)])
    await w.step()
    assert w.status is WorkerStatus.HOLD
    o = await row(admin_pool, "SELECT status, filled_qty FROM trade.orders")
    assert o == {"status": "FILLED", "filled_qty": 76}
    assert len(await rows(admin_pool, "SELECT * FROM trade.fills")) == 2
    p = await row(admin_pool, "SELECT * FROM trade.position_state WHERE symbol = '005930'")
    assert p["qty"] == 76 and p["status"] == "OPEN" and p["entry_price"] == D("10504.74")
    assert p["entry_ts"] is not None and p["worker_id"] == w.worker_id
    assert (p["strategy_version"], p["params_version"]) == ("breakout-v1", "breakout-v1@2026-03-10")
    r = await row(admin_pool, "SELECT status, current_symbol FROM trade.workers WHERE worker_id = %s", w.worker_id)
    assert r == {"status": "HOLD", "current_symbol": "005930"}
    ctx = await row(admin_pool, "SELECT ref_price, candidate_id, context FROM trade.intent_context")
    assert ctx["ref_price"] == D(10_500) and ctx["candidate_id"] is not None and ctx["context"]["breakout_pct"] > 0
    async with admin_pool.connection() as conn:
        (ev,) = await events(conn, "PositionEntered")
        (_ic,) = await events(conn, "IntentCreated")
    assert ev["data"]["qty"] == 76 and ev["data"]["params_version"] == "breakout-v1@2026-03-10"
    assert logged(logs, "INFO", "IntentCreated", "BUY 005930 x76 MKT status NEW")
    assert logged(logs, "INFO", "fill", "005930 BUY 40@10500")
    assert logged(logs, "INFO", "SCAN -> HOLD")


async def test_sc006_holding_with_no_exit_rule_triggered_monitors(app: StrategyApp, admin_pool: Pool,
                                                                  clock: ManualClock,
                                                                  logs: list[dict[str, Any]]) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up")
    (w,) = await to_scan(app)
    await enter(app, admin_pool, w, "005930")
    before = await row(admin_pool, "SELECT qty, avg_price, status FROM trade.position_state")
    for _ in range(3):
        clock.advance(2)
        await w.step()
    assert w.status is WorkerStatus.HOLD
    assert await row(admin_pool, "SELECT qty, avg_price, status FROM trade.position_state") == before
    async with admin_pool.connection() as conn:
        assert await intents(conn, side="SELL") == []
        mon = await events(conn, "Monitoring")
    assert len(mon) == 1  # throttled: one event per monitor_event_every_s, the evaluation every step
    assert mon[0]["symbol"] == "005930" and mon[0]["data"]["gain_pct"] == 0.0
    assert set(mon[0]["data"]["rules"]) >= {"STOP_LOSS", "TAKE_PROFIT", "TREND_BREAK", "TIME_EXIT"}
    assert logged(logs, "INFO", "005930: no exit rule triggered")
    assert logged(logs, "DEBUG", "monitor 005930: no exit rule triggered")


async def test_sc007_stop_loss_sells_releases_the_lock_and_scans_again(app: StrategyApp, admin_pool: Pool,
                                                                       clock: ManualClock,
                                                                       logs: list[dict[str, Any]]) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up")
    (w,) = await to_scan(app)
    await enter(app, admin_pool, w, "005930")
    clock.advance(60)
    async with admin_pool.connection() as conn:
        await set_price(conn, "005930", 10_250, now=clock.now())
    await w.step()
    async with admin_pool.connection() as conn:
        (s,) = await intents(conn, side="SELL")
    assert (s["intent_type"], s["qty"], s["order_type"], s["reason"]) == ("EXIT_FULL", 76, "MKT", "STOP_LOSS")
    assert s["action_key"].startswith("exit:005930:")
    await w.step()  # the sell is on its way: no second intent
    async with admin_pool.connection() as conn:
        assert len(await intents(conn, side="SELL")) == 1
    await sell(admin_pool, "005930", price=10_250)
    await w.step()
    assert w.status is WorkerStatus.SCAN and w.symbol is None
    assert (await row(admin_pool, "SELECT status FROM trade.orders WHERE side = 'SELL'"))["status"] == "FILLED"
    assert (await row(admin_pool, "SELECT qty, status FROM trade.position_state")) == {"qty": 0, "status": "FLAT"}
    assert await rows(admin_pool, "SELECT * FROM trade.symbol_locks") == []
    r = await row(admin_pool, "SELECT status, current_symbol FROM trade.workers WHERE worker_id = %s", w.worker_id)
    assert r == {"status": "SCAN", "current_symbol": None}
    buy_fee = D(76 * 10_500) * D("0.00015") // 1
    sell_amount = D(76 * 10_250)
    expected = sell_amount - D(76 * 10_500) - buy_fee - (sell_amount * D("0.00015") // 1) - (sell_amount * D("0.002")
                                                                                             // 1)
    ds = await row(admin_pool, "SELECT * FROM trade.daily_summaries")
    assert ds["realized_pnl"] == expected and ds["trades_count"] == 1 and ds["losses"] == 1
    async with admin_pool.connection() as conn:
        (ex,) = await events(conn, "PositionExited")
        assert D(ex["data"]["pnl"]) == expected and ex["data"]["outcome"] == "loss"
        assert [e["data"]["reason"] for e in await events(conn, "LockReleased")] == ["position closed"]
    re = await row(admin_pool, "SELECT symbol, exit_reason, status, cooldown_until > exited_ts AS cools"
                   " FROM trade.reentry_candidates")
    assert re == {"symbol": "005930", "exit_reason": "STOP_LOSS", "status": "WAITING", "cools": True}
    assert logged(logs, "INFO", "PnL 005930", "loss") and logged(logs, "INFO", "HOLD -> SCAN")
    assert logged(logs, "INFO", "lock 005930 released")


async def test_sc011_daily_summary_after_a_winner_and_a_loser(app: StrategyApp, admin_pool: Pool,
                                                              clock: ManualClock,
                                                              logs: list[dict[str, Any]]) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up", price=10_500)
        await add_symbol(conn, "000660", trend="up", price=10_400)
    (w,) = await to_scan(app)
    first = await enter(app, admin_pool, w, "005930")
    assert first["symbol"] == "005930"
    clock.advance(60)
    async with admin_pool.connection() as conn:
        await set_price(conn, "005930", 10_820, now=clock.now())  # +3 %: sell half
    await w.step()
    part = await sell(admin_pool, "005930", price=10_820)
    assert (part["intent_type"], part["qty"], part["reason"]) == ("EXIT_PARTIAL", 38, "TAKE_PROFIT")
    await w.step()
    assert w.status.value == "HOLD"
    assert (await row(admin_pool, "SELECT qty, exit_stage FROM trade.position_state")) == {"qty": 38, "exit_stage": 1}
    async with admin_pool.connection() as conn:
        await set_price(conn, "005930", 11_030, now=clock.now())  # +5 %: the rest
    await w.step()
    rest = await sell(admin_pool, "005930", price=11_030)
    assert (rest["intent_type"], rest["qty"], rest["reason"]) == ("EXIT_FULL", 38, "TAKE_PROFIT_2")
    await w.step()
    assert w.status is WorkerStatus.SCAN
    # the next candidate (005930 is cooling down for re-entry)
    await enter(app, admin_pool, w, "000660", price=10_400)
    clock.advance(60)
    async with admin_pool.connection() as conn:
        await set_price(conn, "000660", 10_150, now=clock.now())
    await w.step()
    await sell(admin_pool, "000660", price=10_150)
    await w.step()
    assert w.status is WorkerStatus.SCAN
    trips = await rows(admin_pool, "SELECT symbol, pnl, fees, taxes FROM trade.round_trips ORDER BY trip_id")
    assert [t["symbol"] for t in trips] == ["005930", "000660"]
    win, loss = trips[0]["pnl"], trips[1]["pnl"]
    assert win > 0 > loss
    assert win == 38 * 10_820 + 38 * 11_030 - 76 * 10_500 - trips[0]["fees"] - trips[0]["taxes"]
    ds = await row(admin_pool, "SELECT * FROM trade.daily_summaries WHERE trade_date = '2026-03-10'")
    assert ds["realized_pnl"] == win + loss and ds["trades_count"] == 2 and (ds["wins"], ds["losses"]) == (1, 1)
    assert ds["win_rate"] == D("0.5") and ds["avg_pnl"] == ((win + loss) / 2).quantize(D("0.01"))
    assert ds["max_loss"] == loss
    assert ds["profit_factor"] == (win / -loss).quantize(D("0.0001")) and ds["max_drawdown"] == -loss
    assert ds["fees"] == trips[0]["fees"] + trips[1]["fees"] and ds["taxes"] == trips[0]["taxes"] + trips[1]["taxes"]
    notes = ds["notes"]
    assert notes["by_exit_reason"]["STOP_LOSS"]["n"] == 1 and notes["by_exit_reason"]["TAKE_PROFIT_2"]["wins"] == 1
    assert notes["signal_inputs"]["winners"]["n"] == 1 and notes["signal_inputs"]["losers"]["breakout_pct"] > 0
    assert "thin_liquidity" in notes and "forced_exits" in notes
    assert logged(logs, "INFO", "daily summary 2026-03-10", "trades 2")


async def test_sc010_two_workers_never_buy_the_same_symbol(strategy_pool: Pool, admin_pool: Pool,
                                                           clock: ManualClock) -> None:
    import asyncio
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up", price=10_500)
        await add_symbol(conn, "000660", trend="up", price=10_400)
    app = make_app(strategy_pool, clock, workers=2)
    a, b = await to_scan(app)
    await app.scanner.run_once()
    await asyncio.gather(a.step(), b.step())
    async with admin_pool.connection() as conn:
        entries = await intents(conn, intent_type="ENTRY")
        rejected = await events(conn, "LockRejected")
    assert sorted(i["symbol"] for i in entries) == ["000660", "005930"]
    assert len({i["worker_id"] for i in entries}) == 2
    locks_ = {r["symbol"]: r["worker_id"] for r in await rows(admin_pool, "SELECT * FROM trade.symbol_locks")}
    assert locks_ == {i["symbol"]: i["worker_id"] for i in entries}
    top = app.scanner.latest.signals[0].symbol if app.scanner.latest else ""
    (rej,) = rejected  # the loser of the race for the best symbol went on to the next one
    assert rej["symbol"] == top and rej["worker_id"] != locks_[top]
    await app.stop()


async def test_ec002_a_rejected_entry_releases_the_lock_and_scans_on(app: StrategyApp, admin_pool: Pool,
                                                                     logs: list[dict[str, Any]]) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up", price=10_500)
        await add_symbol(conn, "000660", trend="up", price=10_400)
    (w,) = await to_scan(app)
    await app.scanner.run_once()
    await w.step()
    async with admin_pool.connection() as conn:
        (i,) = await intents(conn)
        await execute(conn, i["intent_id"], reject="APBK0952 주문가능금액을 초과 했습니다")
    await w.step()
    assert w.status is WorkerStatus.SCAN and w.symbol is None
    assert (await row(admin_pool, "SELECT status FROM trade.orders"))["status"] == "REJECTED"
    assert await rows(admin_pool, "SELECT * FROM trade.symbol_locks WHERE symbol = %s", i["symbol"]) == []
    r = await row(admin_pool, "SELECT status, current_symbol FROM trade.workers WHERE worker_id = %s", w.worker_id)
    assert r == {"status": "SCAN", "current_symbol": None}
    async with admin_pool.connection() as conn:
        (ev,) = await events(conn, "OrderRejected")
    assert ev["level"] == "WARN" and ev["symbol"] == i["symbol"] and "주문가능금액" in ev["data"]["reason"]
    assert logged(logs, "WARNING", "entry", "failed", "releasing the lock")
    assert logged(logs, "INFO", f"lock {i['symbol']} released")
    await w.step()  # and goes on to the other candidate
    async with admin_pool.connection() as conn:
        assert [x["symbol"] for x in await intents(conn, status="NEW")] == [
            s for s in ("005930", "000660") if s != i["symbol"]]
    assert await rows(admin_pool, "SELECT * FROM trade.position_state WHERE qty > 0") == []


async def test_ec004_capital_limit_blocks_the_entry(strategy_pool: Pool, admin_pool: Pool, clock: ManualClock,
                                                    logs: list[dict[str, Any]]) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up")
    app = make_app(strategy_pool, clock, capital_limit=500_000)
    (w,) = await to_scan(app)
    await app.scanner.run_once()
    await w.step()
    assert w.status is WorkerStatus.SCAN and w.pending is None
    async with admin_pool.connection() as conn:
        assert await intents(conn) == []
        (ev,) = await events(conn, "RiskViolation")
    assert await rows(admin_pool, "SELECT * FROM trade.orders") == []
    assert await rows(admin_pool, "SELECT * FROM trade.symbol_locks") == []
    assert ev["level"] == "WARN" and ev["data"]["rule"] == "capital_limit" and ev["data"]["limit"] == "500000"
    assert logged(logs, "WARNING", "RiskViolation", "entry blocked")
    await app.stop()


async def test_ec004_daily_loss_limit_blocks_entries_but_not_exits(strategy_pool: Pool, admin_pool: Pool,
                                                                   clock: ManualClock) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up")
        await add_symbol(conn, "000660", trend="up", price=10_400)
    app = make_app(strategy_pool, clock, workers=2, daily_loss_limit=20_000)
    a, b = await to_scan(app)
    await enter(app, admin_pool, a, "005930")
    clock.advance(60)
    async with admin_pool.connection() as conn:
        await set_price(conn, "005930", 10_300, now=clock.now())  # -1.9 %: unrealized -15,200
    await app.scanner.run_once()
    await b.step()
    async with admin_pool.connection() as conn:
        assert await intents(conn, symbol="000660") == []
        v = await events(conn, "RiskViolation")
    assert v[0]["data"]["rule"] == "daily_loss_limit" and v[0]["data"]["unrealized"] == "-15200.0000"
    assert b.status is WorkerStatus.SCAN
    async with admin_pool.connection() as conn:
        await set_price(conn, "005930", 10_250, now=clock.now())
    await a.step()  # exits are never blocked by risk
    async with admin_pool.connection() as conn:
        assert [i["reason"] for i in await intents(conn, side="SELL")] == ["STOP_LOSS"]
    await app.stop()


async def test_halted_blocks_entries_everywhere_but_exits_go_on(app: StrategyApp, admin_pool: Pool,
                                                                clock: ManualClock) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up")
    (w,) = await to_scan(app)
    await enter(app, admin_pool, w, "005930")
    async with admin_pool.connection() as conn:
        await conn.execute("UPDATE trade.trading_state SET state = 'HALTED', reason = 'test', changed_by = 'test'")
        await add_symbol(conn, "000660", trend="up", price=10_400)
        await set_price(conn, "005930", 10_250, now=clock.now())
    await w.step()
    await sell(admin_pool, "005930", price=10_250)
    await w.step()
    assert w.status is WorkerStatus.SCAN
    assert not await app.scan_if_due()  # no scanning while halted
    await app.scanner.run_once()
    await w.step()  # a signal, but HALTED: no entry
    async with admin_pool.connection() as conn:
        assert await intents(conn, intent_type="ENTRY", symbol="000660") == []
