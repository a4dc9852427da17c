"""The close (SC-008, EC-003): staggered starts, conditional limits in place before the auction,
hands off from 15:20 to the uncross, post-close (06) and after-hours (07) sells, the retry cap per
stage, paper KIS, the summary; and flatten on request."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from stock_manager.services.execution.rules import Intent, SymbolInfo, validate
from stock_manager.services.strategy.app import StrategyApp
from stock_manager.services.strategy.quotes import QuoteUnavailable
from stock_manager.shared.clock import ManualClock
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.market_rules import Market
from stock_manager.shared.trade_states import WorkerStatus
from tests.strategy.conftest import make_app
from tests.strategy.flow import enter, row, rows, sell, to_scan
from tests.strategy.support import add_close, add_symbol, broker_checked, events, execute, intents, settle


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


async def one_thin_position(strategy_pool: Pool, admin_pool: Pool, clock: ManualClock, **cfg: Any) -> StrategyApp:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "000660", trend="up", price=10_400, turnover=600_000_000)
    app = make_app(strategy_pool, clock, liquidation_retry_s=0.0, **cfg)
    (w,) = await to_scan(app)
    await enter(app, admin_pool, w, "000660", price=10_400)
    return app


def at(clock: ManualClock, hh: int, mm: int, ss: int = 0) -> None:
    clock.set(clock.now().replace(hour=hh, minute=mm, second=ss, microsecond=0))


async def newest_order(admin_pool: Pool, symbol: str) -> dict[str, Any]:
    return await row(admin_pool, "SELECT * FROM trade.orders WHERE symbol = %s AND side = 'SELL'"
                                 " ORDER BY order_id DESC LIMIT 1", symbol)


async def submit_newest(admin_pool: Pool, symbol: str, clock: ManualClock) -> int:
    """Execution sends the newest NEW sell: the broker takes it, nothing fills yet."""
    async with admin_pool.connection() as conn:
        (i,) = await intents(conn, symbol=symbol, side="SELL", status="NEW")
        order_id = await execute(conn, i["intent_id"], at=clock.now())
    assert order_id is not None
    return order_id


async def test_sc008_the_least_liquid_start_first_and_every_sell_rests_before_the_auction(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock, logs: list[dict[str, Any]]) -> None:
    app = await two_positions(strategy_pool, admin_pool, clock)
    a, _ = app.workers
    at(clock, 15, 14, 59)
    assert await app.liquidator.round() == 0  # not yet
    at(clock, 15, 15)
    await a.step()  # a holding worker leaves the selling to the liquidator now
    assert await app.liquidator.round() == 1  # the thin one, 15 minutes before the close
    at(clock, 15, 18, 59)
    assert await app.liquidator.round() == 0  # the liquid one starts 11 minutes before the close
    at(clock, 15, 19)
    assert await app.liquidator.round() == 1
    async with admin_pool.connection() as conn:
        sells = await intents(conn, side="SELL")
        mand = await events(conn, "MandatoryLiquidation")
    # conditional limits (ORD_DVSN 02) two ticks into the bid (bid = price - 10), written before 15:20
    assert [(s["symbol"], s["order_type"], s["limit_price"], s["reason"]) for s in sells] == [
        ("000660", "CLMT", Decimal(10_370), "FORCED_LIQUIDATION"), ("005930", "CLMT", Decimal(10_470),
                                                                    "FORCED_LIQUIDATION")]
    assert all(s["market_ts"].time() < clock.now().replace(hour=15, minute=20).time() for s in sells)
    assert [m["data"]["rank"] for m in mand] == [1, 2] and mand[0]["level"] == "WARN"
    assert logged(logs, "WARNING", "MandatoryLiquidation", "least liquid first")
    assert await app.liquidator.round() == 0  # nothing uncovered: no duplicate sells
    # the liquid one fills; the thin one only in part, its rest working, then re-priced before 15:19:30
    await sell(admin_pool, "005930", price=10_480, at=clock.now())
    await sell(admin_pool, "000660", fills=[(30, 10_370)], price=0, at=clock.now())
    at(clock, 15, 19, 10)
    assert await app.liquidator.round() == 0  # the rest is still working: cancel it first
    async with admin_pool.connection() as conn:
        (req,) = await (await conn.execute("SELECT * FROM trade.cancel_requests")).fetchall()
        await conn.execute("UPDATE trade.orders SET status = 'CANCELLED', cancelled_qty = qty - filled_qty"
                           " WHERE order_id = %s", (req["order_id"],))
        await conn.execute("UPDATE trade.cancel_requests SET status = 'DONE' WHERE request_id = %s",
                           (req["request_id"],))
    assert await app.liquidator.round() == 1  # the remainder, re-priced, under a new action_key
    async with admin_pool.connection() as conn:
        retry = (await intents(conn, symbol="000660", side="SELL"))[-1]
    assert retry["qty"] == int(sells[0]["qty"]) - 30 and retry["action_key"].endswith(":1")
    assert retry["order_type"] == "CLMT"
    assert logged(logs, "WARNING", "liquidation 000660: retry 1 in CLOSING")
    # it rests into the auction, where it is a market order: the uncross fills it
    order_id = await submit_newest(admin_pool, "000660", clock)
    at(clock, 15, 25)
    assert await app.liquidator.round() == 0
    at(clock, 15, 30, 20)
    async with admin_pool.connection() as conn:
        await settle(conn, order_id, [(int(retry["qty"]), 10_250)], at=clock.now())
    at(clock, 15, 31)
    assert await app.liquidator.close_round()  # flat after the uncross: the day is over
    assert await rows(admin_pool, "SELECT * FROM trade.position_state WHERE qty <> 0") == []
    assert await rows(admin_pool, "SELECT * FROM trade.symbol_locks") == []
    ds = await row(admin_pool, "SELECT * FROM trade.daily_summaries")
    assert ds["trades_count"] == 2 and ds["notes"]["forced_exits"]["trades"] == 2
    async with admin_pool.connection() as conn:
        assert len(await events(conn, "PositionExited")) == 2
        assert len(await events(conn, "DailySummary")) == 1
    await app.stop()


async def test_from_the_cutoff_to_the_uncross_nothing_is_cancelled_or_re_sent(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock, logs: list[dict[str, Any]]) -> None:
    app = await one_thin_position(strategy_pool, admin_pool, clock)
    at(clock, 15, 15)
    assert await app.liquidator.round() == 1
    order_id = await submit_newest(admin_pool, "000660", clock)
    # 30 s before the auction a working sell is left alone: its replacement might miss 15:20
    for hh, mm, ss in ((15, 19, 30), (15, 19, 59), (15, 20, 0), (15, 24, 0), (15, 29, 59)):
        at(clock, hh, mm, ss)
        assert await app.liquidator.round() == 0
    # the broker ends it in the auction with shares unsold: not re-sent either
    async with admin_pool.connection() as conn:
        await settle(conn, order_id, [(10, 10_300)], final="CANCELLED", at=clock.now())
    at(clock, 15, 29, 59)
    assert await app.liquidator.round() == 0
    at(clock, 15, 30, 15)  # waiting for the uncross
    assert await app.liquidator.round() == 0
    assert await rows(admin_pool, "SELECT * FROM trade.cancel_requests") == []
    async with admin_pool.connection() as conn:
        assert len(await intents(conn, side="SELL")) == 1
    assert logged(logs, "WARNING", "liquidation 000660", "nothing is re-sent from just before the closing auction")
    await app.stop()


async def test_a_thin_symbol_left_after_the_close_goes_out_as_06_then_07(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock) -> None:
    app = await one_thin_position(strategy_pool, admin_pool, clock)
    at(clock, 15, 15)
    assert await app.liquidator.round() == 1
    order_id = await submit_newest(admin_pool, "000660", clock)
    held = int((await newest_order(admin_pool, "000660"))["qty"])
    at(clock, 15, 30, 25)  # the uncross fills 30; the rest expires with the session
    async with admin_pool.connection() as conn:
        await settle(conn, order_id, [(30, 10_300)], final="CANCELLED", at=clock.now())
    at(clock, 15, 31)
    assert not await app.liquidator.close_round()  # not flat, and sessions are left to sell in
    at(clock, 15, 39, 59)
    assert await app.liquidator.round() == 0  # between the uncross and the post-close session
    async with admin_pool.connection() as conn:
        await broker_checked(conn, clock.now())  # before the stage: not what it sizes on
    at(clock, 15, 40)
    assert await app.liquidator.round() == 0  # the broker has not confirmed the holding since 15:40
    async with admin_pool.connection() as conn:  # a check that still differs for it: a fill on its way
        await broker_checked(conn, clock.now(), [{"symbol": "000660", "broker_qty": held - 31, "our_qty": held - 30}])
    assert await app.liquidator.round() == 0
    async with admin_pool.connection() as conn:
        await broker_checked(conn, clock.now())
    assert await app.liquidator.round() == 1
    async with admin_pool.connection() as conn:
        post = (await intents(conn, symbol="000660", side="SELL"))[-1]
    assert (post["order_type"], post["limit_price"], post["qty"]) == ("CLOSE", None, held - 30)
    assert _execution_accepts(post, clock) is None  # Execution's rules take it now
    assert await app.liquidator.round() == 0  # covered: no second one
    order_id = await submit_newest(admin_pool, "000660", clock)
    at(clock, 15, 55)  # the closing price is 10,280; 10 shares find a buyer, the rest expires at 16:00
    async with admin_pool.connection() as conn:
        await settle(conn, order_id, [(10, 10_280)], final="CANCELLED", at=clock.now())
    at(clock, 16, 0)
    assert await app.liquidator.round() == 0  # the post-close session's last trades may be on their way
    async with admin_pool.connection() as conn:
        await broker_checked(conn, clock.now())
    assert await app.liquidator.round() == 1
    async with admin_pool.connection() as conn:
        ahs = (await intents(conn, symbol="000660", side="SELL"))[-1]
    # the lowest price the session takes: 10,280 - 10 % = 9,252, up onto the 10-won tick
    assert (ahs["order_type"], ahs["limit_price"], ahs["qty"]) == ("AHS", Decimal(9_260), held - 40)
    assert _execution_accepts(ahs, clock) is None
    order_id = await submit_newest(admin_pool, "000660", clock)
    at(clock, 16, 10)  # the first single-price auction
    async with admin_pool.connection() as conn:
        await settle(conn, order_id, [(held - 40, 9_260)], at=clock.now())
    at(clock, 16, 11)
    assert await app.liquidator.round() == 0
    assert await app.liquidator.close_round()  # flat now: the day closes
    ds = await row(admin_pool, "SELECT * FROM trade.daily_summaries")
    (liq,) = ds["notes"]["liquidation"]["trips"]
    # the reference is the bid when the liquidation began (10,390)
    expected = 10_390 * held - (30 * 10_300 + 10 * 10_280 + (held - 40) * 9_260)
    assert liq["symbol"] == "000660" and liq["thin"] and Decimal(liq["cost_won"]) == expected
    assert set(liq["by_type"]) == {"CLMT", "CLOSE", "AHS"} and Decimal(liq["cost_pct"]) > 0
    assert ds["notes"]["liquidation"]["thin_symbols"] == ["000660"]
    assert any("unfavourable liquidation fills from thin liquidity: 000660" in s for s in ds["notes"]["suggestions"])
    async with admin_pool.connection() as conn:
        (summary,) = await events(conn, "DailySummary")
    assert Decimal(summary["data"]["liquidation_cost_won"]) == expected
    assert summary["data"]["thin_liquidity"] == ["000660"] and summary["data"]["left_open"] == []
    await app.stop()


def _execution_accepts(i: dict[str, Any], clock: ManualClock) -> str | None:
    info = SymbolInfo("000660", Market.KOSPI, False, 13_000, 7_000, Decimal(10_300))
    intent = Intent(str(i["intent_id"]), i["action_key"], i["symbol"], i["side"], i["intent_type"], int(i["qty"]),
                    i["order_type"], i["limit_price"])
    return validate(intent, info, "ACTIVE", clock.now())


async def test_ec003_three_retries_per_stage_then_a_warn_and_the_next_stage(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock, logs: list[dict[str, Any]]) -> None:
    app = await one_thin_position(strategy_pool, admin_pool, clock)
    async with admin_pool.connection() as conn:
        await add_close(conn, "000660", 10_300)
    bought = int((await row(admin_pool, "SELECT qty FROM trade.position_state"))["qty"])
    at(clock, 15, 40)
    async with admin_pool.connection() as conn:
        await broker_checked(conn, clock.now())
    for attempt in range(4):  # the first sell and three retries, each refused by the broker
        assert await app.liquidator.round() == 1, attempt
        async with admin_pool.connection() as conn:
            (i,) = await intents(conn, symbol="000660", side="SELL", status="NEW")
            assert i["order_type"] == "CLOSE"
            await execute(conn, i["intent_id"], reject="no counterparty", at=clock.now())
        clock.advance(5)
    assert await app.liquidator.round() == 0  # the cap: no fifth
    assert await app.liquidator.round() == 0
    async with admin_pool.connection() as conn:
        (inc,) = await events(conn, "LiquidationIncomplete")
    assert inc["level"] == "WARN" and inc["data"]["attempts"] == 4 and inc["data"]["stage"] == "POST_CLOSE"
    assert inc["data"]["remaining"] == bought and inc["data"]["next"] == "AFTER_HOURS"
    assert logged(logs, "WARNING", "LiquidationIncomplete", "thin liquidity")
    at(clock, 16, 0)  # a new stage counts afresh; its price comes from the 15:30 bar
    async with admin_pool.connection() as conn:
        await broker_checked(conn, clock.now())
    assert await app.liquidator.round() == 1
    async with admin_pool.connection() as conn:
        ahs = (await intents(conn, symbol="000660", side="SELL"))[-1]
    assert (ahs["order_type"], ahs["limit_price"]) == ("AHS", Decimal(9_270))
    # nothing sells all evening: at 18:00 the day closes with the position open, reported
    await submit_newest(admin_pool, "000660", clock)
    at(clock, 17, 59)
    assert not await app.liquidator.close_round()
    at(clock, 18, 0)
    assert await app.liquidator.close_round()
    async with admin_pool.connection() as conn:
        last = (await events(conn, "LiquidationIncomplete"))[-1]
    assert last["data"]["stage"] == "DAY_END" and "stays open until the next session" in last["message"]
    ds = await row(admin_pool, "SELECT * FROM trade.daily_summaries")
    assert [(u["symbol"], u["stage"]) for u in ds["notes"]["unfilled"]] == [("000660", "DAY_END")]
    assert any("unsold" in s for s in ds["notes"]["suggestions"])
    await app.stop()


async def test_ec003_retries_in_the_closing_stage_stop_at_the_cap(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock) -> None:
    app = await one_thin_position(strategy_pool, admin_pool, clock, liquidation_max_retries=2)
    bought = int((await row(admin_pool, "SELECT qty FROM trade.position_state"))["qty"])
    at(clock, 15, 16)
    for part in (20, 20, 20):
        assert await app.liquidator.round() == 1
        await sell(admin_pool, "000660", fills=[(part, 10_300)], final="CANCELLED", at=clock.now())
        clock.advance(5)
    assert await app.liquidator.round() == 0  # two retries spent
    async with admin_pool.connection() as conn:
        (inc,) = await events(conn, "LiquidationIncomplete")
    assert inc["data"]["attempts"] == 3 and inc["data"]["remaining"] == bought - 60
    assert inc["data"]["stage"] == "CLOSING" and inc["data"]["next"] == "POST_CLOSE"
    await app.stop()


async def test_paper_kis_skips_06_and_07_and_warns_that_the_position_stays_open(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock) -> None:
    app = await one_thin_position(strategy_pool, admin_pool, clock, after_hours=False)
    at(clock, 15, 15)
    assert await app.liquidator.round() == 1
    order_id = await submit_newest(admin_pool, "000660", clock)
    at(clock, 15, 30, 25)
    async with admin_pool.connection() as conn:
        await settle(conn, order_id, [(30, 10_300)], final="CANCELLED", at=clock.now())
    at(clock, 15, 31)
    assert await app.liquidator.close_round()  # paper: the uncross was the last session
    async with admin_pool.connection() as conn:
        (inc,) = await events(conn, "LiquidationIncomplete")
    assert inc["level"] == "WARN" and "paper KIS" in inc["message"] and "stays open" in inc["message"]
    for hh in (15, 16):
        at(clock, hh, 45)
        assert await app.liquidator.round() == 0  # no ORD_DVSN 06/07 on paper
    async with admin_pool.connection() as conn:
        assert [i["order_type"] for i in await intents(conn, side="SELL")] == ["CLMT"]
    ds = await row(admin_pool, "SELECT * FROM trade.daily_summaries")
    assert ds["notes"]["unfilled"][0]["symbol"] == "000660"
    await app.stop()


async def test_the_day_closes_once_whichever_process_gets_there(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock) -> None:
    app = await one_thin_position(strategy_pool, admin_pool, clock, after_hours=False)
    other = make_app(strategy_pool, clock, "t2", after_hours=False)
    at(clock, 15, 31)
    assert await app.liquidator.close_round()
    assert not await other.liquidator.close_round()  # another process, or this one restarted
    assert not await app.liquidator.close_round()
    async with admin_pool.connection() as conn:
        assert len(await events(conn, "DailySummary")) == 1
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
    assert {(s["reason"], s["order_type"]) for s in sells} == {("FLATTEN", "MKT")}  # before the close window
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


async def test_positions_first_seen_in_the_auction_wait_for_the_post_close_session(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock) -> None:
    app = await two_positions(strategy_pool, admin_pool, clock)
    async with admin_pool.connection() as conn:  # nobody holds them any more: a dead worker's, say
        await conn.execute("DELETE FROM trade.symbol_locks")
    clock.set(clock.now().replace(hour=15, minute=20) + timedelta(seconds=1))  # the liquidator was down till now
    assert await app.liquidator.round() == 0  # a 02 cannot join the call, and nothing else goes into it
    at(clock, 15, 40)
    async with admin_pool.connection() as conn:
        await broker_checked(conn, clock.now())
    assert await app.liquidator.round() == 2
    async with admin_pool.connection() as conn:
        assert [s["order_type"] for s in await intents(conn, side="SELL")] == ["CLOSE", "CLOSE"]
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


class QuotedClose:
    """The broker's inquire-price after the regular session: its price is the day's close."""

    def __init__(self, close: int | None) -> None:
        self.close = close
        self.asked: list[str] = []

    async def price(self, symbol: str) -> Decimal:
        self.asked.append(symbol)
        if self.close is None:
            raise QuoteUnavailable(f"{symbol}: no quote")
        return Decimal(self.close)


async def test_a_thin_name_without_a_bar_takes_its_close_from_the_broker(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock, logs: list[dict[str, Any]]) -> None:
    app = await one_thin_position(strategy_pool, admin_pool, clock)
    quotes = QuotedClose(None)
    app.rt.quotes = quotes
    at(clock, 16, 0)
    async with admin_pool.connection() as conn:  # its bars end in the morning: none of the closing call
        await broker_checked(conn, clock.now())
    for _ in range(3):
        assert await app.liquidator.round() == 0  # no close anywhere: no price to offer, said once
    assert len([r for r in logs if "no closing price known" in r["message"]]) == 1
    quotes.close = 10_280
    assert await app.liquidator.round() == 1
    async with admin_pool.connection() as conn:
        ahs = (await intents(conn, symbol="000660", side="SELL"))[-1]
    # 10,280 - 10 % = 9,252, up onto the 10-won tick
    assert (ahs["order_type"], ahs["limit_price"]) == ("AHS", Decimal(9_260))
    assert quotes.asked == ["000660"] * 4
    await app.stop()
