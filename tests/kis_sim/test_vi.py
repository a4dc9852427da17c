"""Volatility interruptions (VI) and designations in the simulator.

The market's rules are checked on ``SymbolState`` directly, with its fair value moved by hand (news
the random walk would take weeks to make); what KIS clients see (H0STCNT0/H0STASP0 frames, REST
fields, the control API) over real HTTP and WebSocket, with the market clock parked.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import httpx
import pytest
from websockets.asyncio.client import connect

from stock_manager.services.kis_sim.listing import (
    HALTED_STATUS,
    STATUS_NAMES,
    Designation,
    kospi200_members,
    seeded_designations,
)
from stock_manager.services.kis_sim.market import Print, SymbolState, day_number, day_start, vi_uncross_delay
from stock_manager.services.kis_sim.orders import Order
from stock_manager.services.kis_sim.universe import Symbol, build_universe
from stock_manager.services.pricesync.symbols import read_master_download
from stock_manager.shared.clock import KST
from stock_manager.shared.market_rules import (
    STATIC_VI_RATE,
    VI_AUCTION_S,
    VI_MAX_RANDOM_END_S,
    Market,
    dynamic_vi_rate,
    vi_trips,
)
from tests.kis_sim.conftest import ASKING, Kis
from tests.kis_sim.test_close import PARKED, fills_of, odno_of, park, until
from tests.kis_sim.test_ws import Feed, sub_msg

SEED = 20260101
DAY = "2026-11-23"
# a liquid KOSDAQ name of our own, so nothing about it depends on the seeded universe
SYM = Symbol("900010", "테스트전자", Market.KOSDAQ, 1, 10_000, 10_200, 9_800, 600_000, 50_000_000, 0.02)
NOT_IN_AUCTION = "APBK0543"


def ts(hhmmss: str) -> float:
    return datetime.fromisoformat(f"{DAY}T{hhmmss}+09:00").timestamp()


class Sink:
    """The broker's part in a fill, as far as the market needs it."""

    def __init__(self) -> None:
        self.fills: list[tuple[str, int, int, float]] = []

    def on_fill(self, order: Order, qty: int, price: int, ts: float) -> None:
        order.filled_qty += qty
        order.dead = order.remaining <= 0
        self.fills.append((order.odno, qty, price, ts))

    def on_expire(self, order: Order, ts: float) -> None:
        order.expired_qty += order.remaining
        order.dead = True

    def on_ioc_cancel(self, order: Order, ts: float) -> None:
        order.cancelled_qty += order.remaining
        order.dead = True


def order(st: SymbolState, seq: int, side: Literal["BUY", "SELL"], qty: int, limit: int | None = None) -> Order:
    """A limit order, or without ``limit`` a market order (its working limit the day's limit)."""
    market_limit = st.upper if side == "BUY" else st.lower
    return Order(seq, f"{seq:010d}", datetime.fromisoformat(DAY).date(), "A-01", "K", st.sym.code, st.sym.name,
                 side, "00" if limit else "01", qty, limit or 0, datetime.now(KST), "100000", "06010",
                 limit=limit or market_limit, aggressive=limit is None)


def state(hhmmss: str, *, kospi200: bool = False, sym: Symbol = SYM) -> tuple[SymbolState, Sink, list[Print]]:
    sink = Sink()
    st = SymbolState(sym, SEED, ts(hhmmss), sink, kospi200=kospi200)
    st.advance(ts(hhmmss))
    prints: list[Print] = []
    st.print_hook = lambda _, p: prints.append(p)
    return st, sink, prints


def move_fair(st: SymbolState, price: float) -> None:
    """News: the fair value jumps to ``price`` (the walk itself moves a few tenths of a percent a minute)."""
    st.x = math.log(price)


# ------------------------------------------------------------------------------------ the rules


def test_vi_bands() -> None:
    assert vi_trips(11_000, 10_000, STATIC_VI_RATE) and vi_trips(9_000, 10_000, STATIC_VI_RATE)
    assert not vi_trips(10_990, 10_000, STATIC_VI_RATE) and not vi_trips(9_010, 10_000, STATIC_VI_RATE)
    assert (dynamic_vi_rate(True), dynamic_vi_rate(False)) == (Decimal("0.03"), Decimal("0.06"))
    assert (dynamic_vi_rate(True, closing=True), dynamic_vi_rate(False, closing=True)) == (Decimal("0.02"),
                                                                                            Decimal("0.04"))
    assert vi_trips(9_700, 10_000, dynamic_vi_rate(True)) and not vi_trips(9_710, 10_000, dynamic_vi_rate(True))


def test_the_random_end_is_seeded_per_symbol_day_and_vi() -> None:
    day = day_number(ts("12:00:00"))
    delays = [vi_uncross_delay(SEED, code, day, n) for code in ("005930", "000660") for n in (0, 1)]
    assert all(0 <= d <= VI_MAX_RANDOM_END_S for d in delays) and len(set(delays)) == 4
    assert delays[0] == vi_uncross_delay(SEED, "005930", day, 0)
    assert delays[0] != vi_uncross_delay(SEED, "005930", day + 1, 0) != vi_uncross_delay(7, "005930", day, 0)


def test_a_jump_past_ten_percent_starts_a_static_vi_and_one_uncross_ends_it() -> None:
    st, sink, prints = state("10:00:00")
    assert st.vis == [] and st.static_ref == st.stats.open > 0
    ref = st.static_ref
    resting = order(st, 1, "BUY", 10, st.lower)
    st.submit(resting, ts("10:00:00"))
    assert st.bids  # it rests in the book

    for step, seconds in enumerate(range(10, 50, 10), 1):  # up 3 % at a time: no dynamic VI on the way
        move_fair(st, ref * (1 + 0.03 * step))
        st.advance(ts(f"10:00:{seconds}"))
    st.advance(ts("10:01:00"))
    vi = st.vi
    assert vi is not None and (vi.kind, vi.call, vi.reference) == ("static", "session", ref)
    assert vi.trigger >= ref * 1.10
    assert prints and all(p.ts < vi.started and p.price < ref * 1.10 for p in prints)  # the trade did not happen
    prints.clear()
    assert st.auction == [resting] and not st.bids  # the resting order joined the auction
    delay = vi_uncross_delay(SEED, SYM.code, day_number(vi.started), 0)
    assert vi.ends - vi.started == pytest.approx(VI_AUCTION_S + delay, abs=1e-3)

    during = order(st, 2, "BUY", 7)  # a market order sent during the VI joins as a market order
    st.advance(ts("10:01:30"))
    st.submit(during, ts("10:01:30"))
    assert during in st.auction and sink.fills == []
    indicative = st.indicative()
    assert indicative is not None and indicative.volume >= 7
    st.advance(vi.ends - 0.01)
    assert st.vi is vi and prints == [] and sink.fills == []

    st.advance(vi.ends + 0.01)
    assert st.vi is None and st.vis == [vi]
    uncross = prints[0]
    assert uncross.ts == vi.ends and [p for p in prints if p.ts == vi.ends] == [uncross]  # once
    assert sink.fills == [(during.odno, 7, uncross.price, vi.ends)]
    assert st.static_ref == uncross.price >= ref * 1.05  # the VI auction's price is the new reference
    assert resting.live and any(o is resting for _, _, o in st.bids)  # back in the book after the VI


def test_a_jump_past_three_percent_is_a_dynamic_vi_for_kospi200_members_only() -> None:
    member, _, _ = state("10:00:00", kospi200=True)
    other, _, other_prints = state("10:00:00")
    last = member.stats.last
    assert other.stats.last == last
    for st in (member, other):
        move_fair(st, last * 1.045)  # past 3 %, inside 6 % and the static 10 %
        st.advance(ts("10:01:00"))
    vi = member.vi
    assert vi is not None and (vi.kind, vi.reference) == ("dynamic", last) and vi.trigger >= last * 1.03
    assert other.vi is None and other.vis == [] and other_prints  # it traded on, up there
    assert max(p.price for p in other_prints) >= last * 1.03


def test_orders_sent_during_a_vi_trade_only_at_its_uncross() -> None:
    st, sink, _ = state("10:00:00", kospi200=True)
    assert st.force_vi("dynamic", ts("10:00:00")) is not None
    assert st.force_vi("static", ts("10:00:00")) is None  # one at a time
    sell = order(st, 1, "SELL", 5, st.lower)  # marketable anywhere: it would fill at once without the VI
    st.submit(sell, ts("10:00:00"))
    assert sell in st.auction and sink.fills == []
    vi = st.vi
    assert vi is not None
    st.advance(vi.ends + 1)
    assert [(odno, qty, t) for odno, qty, _, t in sink.fills] == [(sell.odno, 5, vi.ends)]


def test_the_closing_call_is_extended_by_a_vi_at_two_percent_for_kospi200_members() -> None:
    member, _, _ = state("15:29:50", kospi200=True)
    other, _, _ = state("15:29:50")
    last = member.stats.last
    start = day_start(member.day_no)
    regular_close = start + member.close_offset
    for st in (member, other):
        move_fair(st, last * 1.03)  # past 2 %, inside 4 %
        st.advance(regular_close + 0.001)
    assert other.closed and other.vi is None and other.vis == []
    vi = member.vi
    assert vi is not None and (vi.kind, vi.call, vi.reference) == ("dynamic", "close", last)
    assert not member.closed and member.in_call()
    delay = vi_uncross_delay(SEED, SYM.code, member.day_no, 0)
    assert vi.ends == pytest.approx(regular_close + VI_AUCTION_S + delay, abs=2e-3)
    member.advance(vi.ends - 0.01)
    assert not member.closed
    member.advance(vi.ends + 0.01)
    assert member.closed and member.vi is None and member.close_price >= last * 1.02


def test_an_opening_price_ten_percent_from_the_base_extends_the_opening_call() -> None:
    st, _, prints = state("08:59:00")
    move_fair(st, SYM.prior_close * 1.15)
    st.advance(ts("09:00:10"))
    vi = st.vi
    assert vi is not None and (vi.kind, vi.call, vi.reference) == ("static", "open", SYM.prior_close)
    assert prints == [] and st.stats.open == 0
    st.advance(vi.ends + 0.01)
    assert prints[0].ts == vi.ends and st.stats.open == prints[0].price == st.static_ref


def test_liquidation_trading_and_overheated_names_have_no_vi() -> None:
    for exempt in (Designation("51", liquidation=True), Designation("59")):
        st, _, prints = state("10:00:00")
        st.designation = exempt
        move_fair(st, st.static_ref * 1.15)
        st.advance(ts("10:01:00"))
        assert st.vi is None and prints and max(p.price for p in prints) > st.static_ref * 1.10


def test_vis_are_deterministic_for_a_seed() -> None:
    runs = []
    for _ in range(2):
        st, _, prints = state("10:00:00")
        move_fair(st, st.static_ref * 0.88)
        st.advance(ts("10:05:00"))
        runs.append((st.vis, [(p.ts, p.price, p.qty) for p in prints]))
    assert runs[0] == runs[1] and runs[0][0] and runs[0][0][0].kind == "both"  # 12 % at once: 6 % too


def test_kospi200_and_designations_are_drawn_from_the_seed() -> None:
    universe = build_universe(SEED, 2500)
    members = kospi200_members(universe)
    assert len(members) == 200 and {"005930", "000660", "005380"} <= members
    assert all(universe[c].market is Market.KOSPI and not universe[c].halted for c in members)
    designated = seeded_designations(universe, SEED, members)
    assert designated == seeded_designations(build_universe(SEED, 2500), SEED, members)
    assert designated != seeded_designations(universe, SEED + 1, members)
    statuses = [d.status or "" for d in designated.values() if not d.liquidation]
    assert sorted(set(statuses)) == sorted(STATUS_NAMES) and len(statuses) == 2 * len(STATUS_NAMES)
    assert [d for d in designated.values() if d.liquidation] == [Designation("51", liquidation=True)]
    warned = {d.status: d.warning for d in designated.values()}
    assert (warned["52"], warned["53"], warned["54"], warned["51"]) == ("03", "02", "01", "00")
    assert not set(designated) & members and all(universe[c].tier >= 2 for c in designated)


# ------------------------------------------------------------------------------------ on the wire


def _records(frames: list[str]) -> list[list[str]]:
    out: list[list[str]] = []
    for frame in frames:
        _, _, count, payload = frame.split("|", 3)
        fields = payload.split("^")
        width = len(fields) // int(count)
        out.extend(fields[i : i + width] for i in range(0, len(fields), width))
    return out


def _post(kis: Kis, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(kis.server.url + path, json=body, timeout=10)


def _entry(kis: Kis, code: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(s for s in kis.server.control("GET", "/sim/symbols")["symbols"] if s["symbol"] == code)
    return entry


async def test_a_vi_shows_in_frames_quotes_and_the_symbol_list_and_ends_with_one_uncross(kis: Kis) -> None:
    sim, code = kis.server, "005930"
    park(sim, "10:00:00")
    approval = await kis.approval()
    async with connect(sim.ws_url + "/tryitout", ping_interval=None) as ws:
        feed = Feed(ws)
        for tr_id in ("H0STCNT0", "H0STASP0"):
            await ws.send(sub_msg(approval, tr_id, code))
            assert (await feed.control())["body"]["msg_cd"] == "OPSP0000"
        before = await kis.price(code)
        assert (before["vi_cls_code"], before["rprs_mrkt_kor_name"]) == ("N", "KOSPI200")
        assert _entry(kis, code)["vi"] is None and _entry(kis, code)["kospi200"] is True

        vi = sim.control("POST", "/sim/vi", {"symbol": code, "kind": "static"})["vi"]
        assert (vi["kind"], vi["call"], vi["trigger_price"]) == ("static", "session", int(before["stck_prpr"]))
        assert _post(kis, "/sim/vi", {"symbol": code, "kind": "dynamic"}).status_code == 409
        assert _entry(kis, code)["vi"] == vi
        buy = await odno_of(kis, "BUY", code, 3, int(before["stck_mxpr"]))  # marketable, yet it waits
        ioc = (await kis.order("BUY", code, 1, int(before["stck_prpr"]), "11")).json()
        assert ioc["msg_cd"] == NOT_IN_AUCTION

        during = await kis.price(code)
        query = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code}
        asking = (await kis.get(ASKING, "FHKST01010200", query)).json()
        assert during["vi_cls_code"] == asking["output2"]["vi_cls_code"] == "Y"
        antc = int(asking["output2"]["antc_cnpr"])
        assert antc > 0
        cnt = _records(await feed.frames("H0STCNT0", 1.5))
        assert cnt and all((r[43], r[12]) == ("C", "0") for r in cnt)  # indicative frames, no trades
        assert cnt[-1][2] == str(antc) and cnt[-1][13] == during["acml_vol"]
        asp = _records(await feed.frames("H0STASP0", 1.5))
        assert asp and all(r[2] == "C" for r in asp) and asp[-1][47] == str(antc)
        assert fills_of(sim, buy) == []

        ends = datetime.fromisoformat(vi["ends"])
        sim.control("POST", "/sim/clock", {"at": (ends - timedelta(seconds=0.3)).isoformat(), "speed": PARKED})
        assert _entry(kis, code)["vi"] == vi and fills_of(sim, buy) == []  # not before its end
        sim.control("POST", "/sim/clock", {"at": (ends + timedelta(seconds=0.5)).isoformat(), "speed": PARKED})
        await until(lambda: fills_of(sim, buy) != [])
        (fill,) = fills_of(sim, buy)
        assert datetime.fromisoformat(fill["ts"]) == ends
        trades = [r for r in _records(await feed.frames("H0STCNT0", 1.0)) if r[43] == "0"]
        assert trades and trades[0][2] == str(fill["price"]) and trades[0][45] == str(fill["price"])
    after = await kis.price(code)
    assert after["vi_cls_code"] == "N" and _entry(kis, code)["vi"] is None


async def test_the_vi_control_refuses_outside_continuous_trading(kis: Kis) -> None:
    park(kis.server, "15:25:00")
    assert _post(kis, "/sim/vi", {"symbol": "005930", "kind": "static"}).status_code == 409
    assert _post(kis, "/sim/vi", {"symbol": "005930", "kind": "both"}).status_code == 400
    assert _post(kis, "/sim/vi", {"symbol": "999999", "kind": "static"}).status_code == 404


async def test_designations_show_in_inquire_price_and_can_be_changed(kis: Kis) -> None:
    sim = kis.server
    symbols = sim.control("GET", "/sim/symbols")["symbols"]
    designated = [s for s in symbols if s["designation"]]
    assert {s["designation"] for s in designated} == set(STATUS_NAMES)
    assert any(s["liquidation_trading"] for s in designated)
    for s in designated:
        out = await kis.price(s["symbol"])
        assert (out["iscd_stat_cls_code"], out["mrkt_warn_cls_code"], out["sltr_yn"]) == (
            s["designation"], s["warn_code"], "Y" if s["liquidation_trading"] else "N")
        assert out["short_over_yn"] == ("Y" if s["designation"] == "59" else "N")
    ordinary = await kis.price("005930")
    assert (ordinary["iscd_stat_cls_code"], ordinary["mrkt_warn_cls_code"], ordinary["sltr_yn"]) == ("55", "00", "N")
    halted = next(s for s in symbols if s["halted"])
    assert (await kis.price(halted["symbol"]))["iscd_stat_cls_code"] == HALTED_STATUS

    warned = sim.control("POST", "/sim/designate", {"symbol": "005930", "iscd_stat_cls_code": "53",
                                                    "mrkt_warn_cls_code": "02"})
    assert warned == {"symbol": "005930", "designation": "53", "warn_code": "02", "liquidation_trading": False}
    out = await kis.price("005930")
    assert (out["iscd_stat_cls_code"], out["mrkt_warn_cls_code"], out["crdt_able_yn"], out["marg_rate"]) == (
        "53", "02", "N", "100.00")
    sim.control("POST", "/sim/designate", {"symbol": "005930", "sltr_yn": "Y"})
    assert (await kis.price("005930"))["sltr_yn"] == "Y" and _entry(kis, "005930")["designation"] == "53"
    sim.control("POST", "/sim/designate", {"symbol": "005930", "iscd_stat_cls_code": "55",
                                           "mrkt_warn_cls_code": "00", "sltr_yn": "N"})
    assert (await kis.price("005930"))["iscd_stat_cls_code"] == "55"
    for bad in ({"symbol": "005930", "iscd_stat_cls_code": "58"}, {"symbol": "005930", "mrkt_warn_cls_code": "04"},
                {"iscd_stat_cls_code": "51"}):
        assert _post(kis, "/sim/designate", bad).status_code == 400
    sim.control("POST", "/sim/designate", {"symbol": "005930", "iscd_stat_cls_code": "51"})
    sim.control("POST", "/sim/reset")
    assert _entry(kis, "005930")["designation"] is None  # a reset restores the seed's designations


async def test_the_master_files_carry_the_designations_as_pricesync_reads_them(kis: Kis) -> None:
    sim = kis.server

    def served() -> dict[str, tuple[str | None, str | None, bool]]:
        out = {}
        for name in ("kospi_code.mst.zip", "kosdaq_code.mst.zip"):
            url = f"{sim.url}/sim/master/{name}"
            for i in read_master_download(httpx.get(url, timeout=10).content, url):
                out[i.symbol] = (i.designation, i.warn_code, i.liquidation_trading)
        return out

    listed = {s["symbol"]: s for s in sim.control("GET", "/sim/symbols")["symbols"]}
    files = served()
    for code, s in listed.items():
        # the files have a flag for 관리종목 (51) only among the status codes
        status = "51" if s["designation"] == "51" else None
        assert files[code] == (status, s["warn_code"], s["liquidation_trading"])
    sim.control("POST", "/sim/designate", {"symbol": "005930", "iscd_stat_cls_code": "51", "mrkt_warn_cls_code": "03"})
    assert served()["005930"] == ("51", "03", False)
