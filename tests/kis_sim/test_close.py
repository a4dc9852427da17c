"""KRX's close in the simulator: the closing call's random-end uncross, its imbalance-driven price,
조건부지정가 at the close, 장후 시간외 종가 (06) and 시간외 단일가 (07).

The auction arithmetic is checked directly on ``clear``; everything else over real HTTP (and the
WebSocket for notices), with the market clock parked (a very slow speed) at the moments that matter.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from websockets.asyncio.client import connect

from stock_manager.services.kis_sim.market import Crowd, clear, close_uncross_delay, day_number, price_grid
from stock_manager.shared.clock import KST
from stock_manager.shared.market_rules import CLOSE_UNCROSS_MAX_DELAY_S, Market, after_hours_limits, ticks_away
from tests.kis_sim.conftest import ASKING, Kis, SimServer
from tests.kis_sim.test_ws import _notice_session, _notices

DAY = "2026-11-23"
PARKED = 0.001  # market seconds per wall second: the clock stays where a test puts it
NOT_IN_CALL = "APBK0543"
OFF_HOURS_CLOSED = "APBK0544"
AFTER_CLOSE = "APBK1665"
PAPER_UNSUPPORTED = "40310000"
PAPER_AFTER_CLOSE = "40580000"


def at(hhmmss: str) -> str:
    return f"{DAY}T{hhmmss}+09:00"


def park(sim: SimServer, hhmmss: str) -> None:
    sim.control("POST", "/sim/clock", {"at": at(hhmmss), "speed": PARKED})


def orders(sim: SimServer) -> dict[str, dict[str, Any]]:
    return {o["odno"]: o for o in sim.control("GET", "/sim/orders")}


def fills_of(sim: SimServer, odno: str) -> list[dict[str, Any]]:
    return [f for f in sim.control("GET", "/sim/fills") if f["odno"] == odno]


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait for the market tick (every 50 ms) to make ``check`` true."""
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def odno_of(kis: Kis, side: str, code: str, qty: int, price: int = 0, dvsn: str | None = None) -> str:
    body = (await kis.order(side, code, qty, price, dvsn)).json()
    assert body["rt_cd"] == "0", body
    odno: str = body["output"]["ODNO"]
    return odno


async def book(kis: Kis, code: str) -> dict[str, Any]:
    r = await kis.get(ASKING, "FHKST01010200", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code})
    data: dict[str, Any] = r.json()
    return data


def thin_cheap_symbols(sim: SimServer) -> list[str]:
    """Tier-3 names under 2,000 won: a 1-won tick, and a closing crowd a test account can outweigh."""
    return [
        s["symbol"]
        for s in sim.control("GET", "/sim/symbols")["symbols"]
        if s["tier"] == 3 and not s["halted"] and 1_000 <= s["base_price"] < 2_000
    ]


async def accumulate(kis: Kis, code: str, rounds: int) -> int:
    """Buy what the visible book offers (IOC market), letting it refill between rounds; the shares held."""
    sim = kis.server
    for i in range(rounds):
        park(sim, f"14:{i * 11:02d}:00")  # a tier-3 book refills in 10 market minutes
        await odno_of(kis, "BUY", code, 20_000, dvsn="13")
    held: int = sim.control("GET", f"/sim/balance?account={kis.cano}-01")["holdings"][code]["qty"]
    assert held > 0
    return held


# ------------------------------------------------------------------------------------ pure logic


def test_close_uncross_delay_is_seeded_per_symbol_and_day_and_at_most_30_s() -> None:
    day = day_number(datetime(2026, 11, 23, 12, tzinfo=KST).timestamp())
    delays = [close_uncross_delay(20260101, code, day) for code in ("005930", "000660", "035420", "005380")]
    assert all(0 <= d <= CLOSE_UNCROSS_MAX_DELAY_S for d in delays)
    assert len(set(delays)) == len(delays)
    assert delays[0] == close_uncross_delay(20260101, "005930", day)
    assert delays[0] != close_uncross_delay(20260101, "005930", day + 1)
    assert delays[0] != close_uncross_delay(7, "005930", day)


GRID = price_grid(1_000, 2_000, Market.KOSPI)
CROWD = Crowd(center=1_500.0, depth=1_000.0, width=0.02)


def test_a_balanced_book_clears_at_the_crowd_centre() -> None:
    alone = clear(GRID, CROWD, [], [], 1_500)
    assert alone.price == 1_500
    assert alone.volume == int(1_000 * math.log(2))
    both = clear(GRID, CROWD, [(None, 3_000)], [(None, 3_000)], 1_500)
    assert both.price == 1_500
    assert (both.buy_fills, both.sell_fills) == ([3_000], [3_000])


def test_the_price_follows_the_imbalance_within_the_grid() -> None:
    prices = [clear(GRID, CROWD, [], [(None, u)], 1_500).price for u in (0, 500, 1_000, 2_000, 4_000)]
    assert prices == sorted(prices, reverse=True) and len(set(prices)) == len(prices)
    # one crowd depth of imbalance moves the price by one width: 1500 * e^-0.02
    assert abs(prices[2] - 1_500 * math.exp(-0.02)) <= 1
    buying = clear(GRID, CROWD, [(None, 1_000)], [], 1_500)
    assert abs(buying.price - 1_500 * math.exp(0.02)) <= 1
    # so heavy that the crowd cannot take it: the lower limit, and the sellers share what trades
    crushed = clear(GRID, CROWD, [], [(None, 10**6), (None, 10**6)], 1_500)
    assert crushed.price == GRID[0]
    assert 0 < crushed.sell_fills[0] < 10**6
    assert crushed.sell_fills[0] >= crushed.sell_fills[1]


def test_limit_orders_trade_only_at_their_price_or_better() -> None:
    cross = clear(GRID, CROWD, [(1_400, 50), (1_500, 50), (1_600, 50)], [(1_450, 40), (1_550, 40)], 1_500)
    assert cross.buy_fills[0] == 0 and cross.buy_fills[2] == 50
    assert cross.sell_fills[1] == 0 and cross.sell_fills[0] == 40
    assert 1_450 <= cross.price <= 1_500


def test_after_hours_band_is_ten_percent_of_the_close_inside_the_daily_limits() -> None:
    assert after_hours_limits(71_000, 71_000) == (63_900, 78_100)
    assert after_hours_limits(1_234, 1_200) == (1_111, 1_357)
    # a close at the daily upper limit: the band stops at the limit
    assert after_hours_limits(92_300, 71_000) == (83_100, 92_300)


# ------------------------------------------------------------------------------------ the closing call


async def test_closing_uncross_comes_once_at_a_seeded_moment_after_1530(kis: Kis) -> None:
    sim = kis.server
    park(sim, "15:21:00")
    upper = int((await kis.price("005930"))["stck_mxpr"])
    limit = await odno_of(kis, "BUY", "005930", 5, upper - 1000)
    market = await odno_of(kis, "BUY", "005930", 3)
    dropped = await odno_of(kis, "BUY", "005930", 2)
    cancel = (await kis.revise(dropped, cancel=True)).json()
    assert cancel["rt_cd"] == "0"  # cancels stay open during the closing call

    day = day_number(datetime.fromisoformat(at("12:00:00")).timestamp())
    delay = close_uncross_delay(sim.config.seed, "005930", day)
    uncross = datetime.fromisoformat(at("15:30:00")) + timedelta(seconds=delay)
    just_before = uncross - timedelta(seconds=min(0.5, delay / 2) if delay > 0 else 0.5)
    sim.control("POST", "/sim/clock", {"at": just_before.isoformat(), "speed": PARKED})
    await asyncio.sleep(0.3)
    assert fills_of(sim, limit) == [] and fills_of(sim, market) == []
    assert (await book(kis, "005930"))["output1"]["new_mkop_cls_code"] == "21"  # still the closing call
    late = (await kis.order("BUY", "005930", 1)).json()
    assert late["msg_cd"] == AFTER_CLOSE  # intake ended at 15:30 even though the call has not uncrossed

    sim.control("POST", "/sim/clock", {"at": (uncross + timedelta(seconds=0.5)).isoformat(), "speed": PARKED})
    await until(lambda: len(fills_of(sim, limit)) + len(fills_of(sim, market)) == 2)
    fills = fills_of(sim, limit) + fills_of(sim, market)
    assert [f["qty"] for f in fills] == [5, 3]
    assert {datetime.fromisoformat(f["ts"]) for f in fills} == {uncross}
    close = int((await kis.price("005930"))["stck_prpr"])
    assert {f["price"] for f in fills} == {close}
    assert orders(sim)[dropped]["filled_qty"] == 0
    assert (await book(kis, "005930"))["output1"]["new_mkop_cls_code"] == "30"
    # once a day: nothing more trades at the close
    sim.control("POST", "/sim/clock", {"at": at("15:35:00"), "speed": PARKED})
    await asyncio.sleep(0.2)
    assert len(fills_of(sim, limit) + fills_of(sim, market)) == 2


async def _close_with(kis: Kis, code: str, sell: int, buy: int, buyer: Kis) -> tuple[int, int, int, str]:
    """Put market orders into the closing call at 15:29:50 and uncross it; (indicative before the
    orders, indicative after them, close, the sell's order number)."""
    sim = kis.server
    park(sim, "15:29:50")
    before = int((await book(kis, code))["output2"]["antc_cnpr"])
    sold = await odno_of(kis, "SELL", code, sell)
    if buy:
        await odno_of(buyer, "BUY", code, buy)
    after = int((await book(kis, code))["output2"]["antc_cnpr"])
    park(sim, "15:33:01")  # past a closing VI too (4 % from the last trade), which extends the call
    await until(lambda: orders(sim)[sold]["status"] not in ("ACCEPTED",))
    close = int((await kis.price(code))["stck_prpr"])
    return before, after, close, sold


async def test_a_sell_imbalance_closes_lower_than_a_balanced_book(kis: Kis) -> None:
    sim = kis.server
    heavy, balanced = thin_cheap_symbols(sim)[:2]
    buyer = Kis(sim)
    await buyer.login()
    held_heavy = await accumulate(kis, heavy, rounds=3)
    held_balanced = await accumulate(kis, balanced, rounds=1)

    before, after, close, sold = await _close_with(kis, heavy, held_heavy, 0, buyer)
    assert after < before  # the indicative price already shows the imbalance
    heavy_move = close / before - 1
    assert orders(sim)[sold]["status"] == "FILLED"
    assert {f["price"] for f in fills_of(sim, sold)} == {close}
    lower = int((await kis.price(heavy))["stck_llam"])
    assert close >= lower

    b_before, b_after, b_close, _ = await _close_with(kis, balanced, held_balanced, held_balanced, buyer)
    balanced_move = b_close / b_before - 1
    assert abs(b_after - b_before) <= ticks_away(b_before, 2) - b_before
    assert abs(balanced_move) < 0.01
    assert heavy_move < balanced_move - 0.02
    await buyer.close()


async def test_conditional_limit_turns_into_a_market_order_at_the_close(kis: Kis) -> None:
    sim = kis.server
    await odno_of(kis, "BUY", "005930", 4)  # shares to sell
    park(sim, "15:19:00")
    out = await kis.price("005930")
    low, high = int(out["stck_llam"]) + 1_000, int(out["stck_mxpr"]) - 1_000
    cond_buy = await odno_of(kis, "BUY", "005930", 3, low, "02")
    cond_sell = await odno_of(kis, "SELL", "005930", 2, high, "02")
    plain = await odno_of(kis, "BUY", "005930", 3, low, "00")
    park(sim, "15:25:00")
    assert (await kis.order("BUY", "005930", 1, low, "02")).json()["msg_cd"] == NOT_IN_CALL
    assert fills_of(sim, cond_buy) == []
    park(sim, "15:30:31")
    await until(lambda: orders(sim)[cond_buy]["status"] == "FILLED" and orders(sim)[cond_sell]["status"] == "FILLED")
    close = int((await kis.price("005930"))["stck_prpr"])
    assert {f["price"] for f in fills_of(sim, cond_buy) + fills_of(sim, cond_sell)} == {close}
    assert low < close < high  # both traded through their limits, as market orders
    assert orders(sim)[plain]["status"] == "EXPIRED"


# ------------------------------------------------------------------------------------ after the close


async def test_post_close_orders_trade_at_the_closing_price_until_1600(kis: Kis) -> None:
    sim = kis.server
    thin = thin_cheap_symbols(sim)[2]
    park(sim, "15:35:00")
    assert (await kis.order("BUY", "005930", 5, dvsn="06")).json()["msg_cd"] == AFTER_CLOSE
    park(sim, "15:40:01")
    close = int((await kis.price("005930"))["stck_prpr"])
    liquid = await odno_of(kis, "BUY", "005930", 5, dvsn="06")
    big = await odno_of(kis, "BUY", thin, 5_000, dvsn="06")
    thin_close = int((await kis.price(thin))["stck_prpr"])
    park(sim, "15:59:59")
    await until(lambda: orders(sim)[liquid]["status"] == "FILLED")
    assert {f["price"] for f in fills_of(sim, liquid)} == {close}
    opened, ended = datetime.fromisoformat(at("15:40:01")), datetime.fromisoformat(at("15:59:59"))
    assert all(opened <= datetime.fromisoformat(f["ts"]) <= ended for f in fills_of(sim, liquid))
    park(sim, "16:00:01")
    await until(lambda: orders(sim)[big]["status"] == "EXPIRED")
    thin_order = orders(sim)[big]
    # thin counter-liquidity: part of a large order fills, the rest expires at 16:00
    assert 0 < thin_order["filled_qty"] < 5_000
    assert thin_order["expired_qty"] == 5_000 - thin_order["filled_qty"]
    assert {f["price"] for f in fills_of(sim, big)} == {thin_close}
    assert (await kis.price(thin))["stck_prpr"] == str(thin_close)  # the close stays the close
    park(sim, "16:05:00")
    assert (await kis.order("BUY", "005930", 5, dvsn="06")).json()["msg_cd"] == OFF_HOURS_CLOSED


async def test_after_hours_single_price_uncrosses_every_ten_minutes_within_ten_percent(kis: Kis) -> None:
    sim = kis.server
    park(sim, "16:01:00")
    close = int((await kis.price("005930"))["stck_prpr"])
    lower, upper = after_hours_limits(close, 71_000)
    over = (await kis.order("BUY", "005930", 1, ticks_away(upper, 1), "07")).json()
    assert over["msg_cd"] == "APBK0507"  # beyond +10 % of the close
    eager = await odno_of(kis, "BUY", "005930", 10, upper, "07")
    shy = await odno_of(kis, "BUY", "005930", 10, lower, "07")
    dropped = await odno_of(kis, "BUY", "005930", 10, upper, "07")
    assert (await kis.revise(dropped, cancel=True)).json()["rt_cd"] == "0"
    park(sim, "16:09:59")
    await asyncio.sleep(0.2)
    assert fills_of(sim, eager) == []
    park(sim, "16:10:01")
    await until(lambda: orders(sim)[eager]["status"] == "FILLED")
    (fill,) = fills_of(sim, eager)
    assert fill["ts"].startswith(f"{DAY}T16:10:00")
    assert lower <= fill["price"] <= upper
    assert abs(fill["price"] / close - 1) <= 0.10
    assert (await kis.price("005930"))["stck_prpr"] == str(close)
    assert orders(sim)[shy]["status"] == "ACCEPTED"  # waits for the next uncross
    assert fills_of(sim, dropped) == []
    park(sim, "18:00:01")
    await until(lambda: orders(sim)[shy]["status"] == "EXPIRED")
    assert (await kis.order("BUY", "005930", 1, close, "07")).json()["msg_cd"] == AFTER_CLOSE


@pytest.mark.parametrize(
    ("hhmmss", "dvsn", "msg_cd"),
    [
        ("10:00:00", "06", OFF_HOURS_CLOSED),
        ("10:00:00", "07", OFF_HOURS_CLOSED),
        ("15:25:00", "02", NOT_IN_CALL),
        ("15:25:00", "06", OFF_HOURS_CLOSED),
        ("15:25:00", "07", OFF_HOURS_CLOSED),
        ("15:35:00", "00", AFTER_CLOSE),
        ("15:35:00", "07", AFTER_CLOSE),
        ("15:45:00", "00", AFTER_CLOSE),
        ("15:45:00", "01", AFTER_CLOSE),
        ("15:45:00", "02", AFTER_CLOSE),
        ("15:45:00", "07", OFF_HOURS_CLOSED),
        ("15:45:00", "06", "APBK0013"),
        ("16:05:00", "00", AFTER_CLOSE),
        ("16:05:00", "01", AFTER_CLOSE),
        ("16:05:00", "06", OFF_HOURS_CLOSED),
        ("16:05:00", "07", "APBK0013"),
        ("18:00:00", "07", AFTER_CLOSE),
    ],
)
async def test_each_window_takes_its_own_order_types(kis: Kis, hhmmss: str, dvsn: str, msg_cd: str) -> None:
    park(kis.server, hhmmss)
    price = int((await kis.price("005930"))["stck_prpr"]) if dvsn in ("00", "02", "07") else 0
    body = (await kis.order("BUY", "005930", 1, price, dvsn)).json()
    assert body["msg_cd"] == msg_cd, body


@pytest.mark.parametrize(
    ("hhmmss", "dvsn", "msg_cd"),
    [
        ("10:00:00", "06", PAPER_UNSUPPORTED),
        ("10:00:00", "07", PAPER_UNSUPPORTED),
        ("15:45:00", "06", PAPER_AFTER_CLOSE),
        ("16:10:00", "07", PAPER_AFTER_CLOSE),
        ("16:10:00", "00", PAPER_AFTER_CLOSE),
    ],
)
async def test_paper_has_no_market_after_the_close(pkis: Kis, hhmmss: str, dvsn: str, msg_cd: str) -> None:
    park(pkis.server, hhmmss)
    body = (await pkis.order("BUY", "005930", 1, 71_000 if dvsn != "06" else 0, dvsn)).json()
    assert (body["rt_cd"], body["msg_cd"]) == ("1", msg_cd), body


async def test_after_the_close_fills_are_notified_like_any_other(kis: Kis) -> None:
    sim = kis.server
    async with connect(sim.ws_url + "/tryitout", ping_interval=None) as ws:
        feed, key, iv = await _notice_session(kis, ws)
        park(sim, "15:40:01")
        close = int((await kis.price("005930"))["stck_prpr"])
        odno = await odno_of(kis, "BUY", "005930", 3, dvsn="06")
        park(sim, "15:59:59")
        notices = await _notices(feed, key, iv, 2)
        accepted, filled = notices[0], notices[-1]
        assert (accepted[2], accepted[6], accepted[13]) == (odno, "06", "1")
        assert (filled[2], filled[6], filled[13]) == (odno, "06", "2")
        assert int(filled[10]) == close
    assert any((f["qty"], f["price"]) == (int(filled[9]), close) for f in fills_of(sim, odno))
