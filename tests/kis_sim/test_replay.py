"""Replay mode: a small recorded day, built here, played by a real simulator over HTTP and WebSocket.

The clock is moved with POST /sim/clock and nearly stopped (speed 0.001) so that what is read is what
the recording says at that moment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from stock_manager.services.kis_sim.replay import ReplayError, load
from stock_manager.shared import dayfile
from stock_manager.shared.clock import KST
from tests.kis_sim.conftest import ASKING, Kis, SimServer, make_config
from tests.kis_sim.test_ws import Feed, sub_msg

DAY = date(2026, 11, 23)  # a Monday
SAMSUNG, HYNIX, KAKAO = "005930", "000660", "035720"
STILL = 0.001


def at(hms: str) -> datetime:
    h, m, s = (float(x) for x in hms.split(":"))
    return datetime(DAY.year, DAY.month, DAY.day, tzinfo=KST) + timedelta(hours=h, minutes=m, seconds=s)


def iso(hms: str) -> str:
    return at(hms).isoformat()


# (time, price, qty, side) of 005930's recorded prints: the open, a morning, the close
SAMSUNG_PRINTS = [
    ("09:00:00", 70_500, 5_000, 3),
    ("09:00:10", 70_600, 100, 1),
    ("09:30:00", 70_400, 300, 5),
    ("10:00:00", 70_300, 250, 5),  # at our resting bid: 200 queued ahead of it, then 50 for us
    ("10:00:30", 70_200, 500, 5),  # through it: the rest of ours
    ("14:00:00", 70_700, 100, 1),
    ("15:30:05", 70_800, 20_000, 1),  # the closing call's uncross
]
BOOK_1 = {  # 09:00:05
    "ask_prices": [70_600, 70_700, 70_800], "ask_qtys": [1_000, 2_000, 3_000],
    "bid_prices": [70_500, 70_400, 70_300], "bid_qtys": [1_500, 2_500, 3_500],
}
BOOK_2 = {  # 09:59:50
    "ask_prices": [70_400, 70_500], "ask_qtys": [400, 800],
    "bid_prices": [70_300, 70_200], "bid_qtys": [200, 900],
}


def _symbol(code: str, name: str, base: int, **extra: Any) -> dict[str, Any]:
    return {"symbol": code, "name": name, "market": "KOSPI", "base_price": base, "upper_limit": None,
            "lower_limit": None, "prev_high": int(base * 1.02), "prev_low": int(base * 0.98),
            "prev_volume": 1_000_000, "halted": False, "designation": None, "warn_code": "00",
            "liquidation_trading": False, "kospi200": True, **extra}


def build_day(path: Path) -> Path:
    trades = [{"ts": at(t), "symbol": SAMSUNG, "price": p, "qty": q, "side": s, "cum_volume": 0}
              for t, p, q, s in SAMSUNG_PRINTS]
    trades += [
        {"ts": at("10:59:00"), "symbol": KAKAO, "price": 41_000, "qty": 10, "side": 1, "cum_volume": 10},
        {"ts": at("11:02:10"), "symbol": KAKAO, "price": 45_150, "qty": 900, "side": 1, "cum_volume": 910},
    ]
    books = [{"ts": at("09:00:05"), "symbol": SAMSUNG, "hour_cls_code": "0", **BOOK_1},
             {"ts": at("09:59:50"), "symbol": SAMSUNG, "hour_cls_code": "0", **BOOK_2}]
    quotes = [{"ts": at(t), "received_ts": at(t), "symbol": HYNIX, "price": p, "bid": p - 500, "ask": p,
               "bid_qty": 50, "ask_qty": 70, "volume": v, "open": 182_000, "high": p, "low": 181_000}
              for t, p, v in (("09:01:00", 182_500, 1_000), ("09:02:00", 183_000, 1_600),
                              ("09:03:00", 182_000, 1_600), ("09:04:00", 181_500, 2_000))]
    events = [
        {"ts": at("11:00:00"), "symbol": KAKAO, "kind": "VI", "state": "STATIC", "reference": 41_000,
         "warn_code": None, "liquidation_trading": None},
        {"ts": at("11:02:10"), "symbol": KAKAO, "kind": "VI", "state": "NONE", "reference": 45_150,
         "warn_code": None, "liquidation_trading": None},
        {"ts": at("12:00:00"), "symbol": KAKAO, "kind": "DESIGNATION", "state": "54", "reference": None,
         "warn_code": "01", "liquidation_trading": False},
    ]
    tables = {
        "symbols": dayfile.table("symbols", [_symbol(SAMSUNG, "삼성전자", 70_000),
                                             _symbol(HYNIX, "SK하이닉스", 182_000), _symbol(KAKAO, "카카오", 41_000)]),
        "trades": dayfile.table("trades", trades),
        "books": dayfile.table("books", books),
        "quotes": dayfile.table("quotes", quotes),
        "events": dayfile.table("events", events),
    }
    dayfile.write_day(path, dayfile.Day(DAY, "synthetic", tables))
    return path


@pytest.fixture(scope="module")
def day_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_day(tmp_path_factory.mktemp("replay") / "day.zip")


@pytest.fixture(scope="module")
def replay_server(day_file: Path) -> Iterator[SimServer]:
    with SimServer(make_config(replay=day_file, clock_start=at("08:00:00"), starting_cash=10_000_000_000)) as server:
        yield server


@pytest.fixture
def sim(replay_server: SimServer) -> SimServer:
    """Overrides conftest's: its ``kis`` client then talks to the replay."""
    replay_server.reset(iso("08:00:00"), STILL)
    return replay_server


def clock(sim: SimServer, hms: str) -> None:
    sim.control("POST", "/sim/clock", {"at": iso(hms), "speed": STILL})


async def book(kis: Kis, code: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    r = await kis.get(ASKING, "FHKST01010200", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code})
    out = r.json()["output1"]
    asks = [(int(out[f"askp{i}"]), int(out[f"askp_rsqn{i}"])) for i in range(1, 11) if int(out[f"askp{i}"])]
    bids = [(int(out[f"bidp{i}"]), int(out[f"bidp_rsqn{i}"])) for i in range(1, 11) if int(out[f"bidp{i}"])]
    return asks, bids


async def fills_at(kis: Kis, hms: str, code: str = SAMSUNG) -> list[tuple[str, int, int, str]]:
    """The fills by ``hms``: the symbol is advanced there by a quote (not left to the next market tick)."""
    clock(kis.server, hms)
    await kis.price(code)
    return fills(kis.server)


def fills(sim: SimServer) -> list[tuple[str, int, int, str]]:
    return [(f["side"], f["qty"], f["price"], f["ts"]) for f in sim.control("GET", "/sim/fills")]


def test_the_universe_is_the_files(sim: SimServer) -> None:
    symbols = {s["symbol"]: s for s in sim.control("GET", "/sim/symbols")["symbols"]}
    assert set(symbols) == {SAMSUNG, HYNIX, KAKAO}
    assert symbols[SAMSUNG]["base_price"] == 70_000 and symbols[SAMSUNG]["kospi200"]
    assert sim.control("GET", "/sim/clock")["now"].startswith("2026-11-23T08:00")


async def test_prints_play_as_recorded(kis: Kis) -> None:
    clock(kis.server, "09:45:00")
    quote = await kis.price(SAMSUNG)
    assert (quote["stck_prpr"], quote["acml_vol"]) == ("70400", str(5_000 + 100 + 300))
    assert (quote["stck_oprc"], quote["stck_hgpr"], quote["stck_lwpr"]) == ("70500", "70600", "70400")
    clock(kis.server, "15:40:00")
    quote = await kis.price(SAMSUNG)
    assert (quote["stck_prpr"], quote["acml_vol"]) == ("70800", str(sum(q for _, _, q, _ in SAMSUNG_PRINTS)))


async def test_quotes_only_symbol_moves_as_polled(kis: Kis) -> None:
    clock(kis.server, "09:02:30")
    quote = await kis.price(HYNIX)
    assert (quote["stck_prpr"], quote["acml_vol"]) == ("183000", "1600")
    clock(kis.server, "09:05:00")
    quote = await kis.price(HYNIX)
    assert (quote["stck_prpr"], quote["acml_vol"]) == ("181500", "2000")
    asks, bids = await book(kis, HYNIX)  # synthesized around the last quote: its bid and ask first
    assert (asks[0], bids[0]) == ((181_500, 70), (181_000, 50)) and len(asks) == 10


async def test_websocket_prints_are_the_recorded_ones(kis: Kis) -> None:
    clock(kis.server, "09:59:00")
    approval = await kis.approval()
    async with connect(kis.server.ws_url, ping_interval=None) as ws:
        feed = Feed(ws)
        await ws.send(sub_msg(approval, "H0STCNT0", SAMSUNG))
        assert (await feed.control())["body"]["msg_cd"] == "OPSP0000"
        await feed.frames("H0STCNT0", 0.3)  # the first tick hooks the stream
        clock(kis.server, "10:00:31")
        frames = await feed.frames("H0STCNT0", 0.5)
    records = []
    for frame in frames:
        _, _, count, payload = frame.split("|", 3)
        fields = payload.split("^")
        records += [fields[i * 46: (i + 1) * 46] for i in range(int(count))]
    assert [(r[1], int(r[2]), int(r[12]), r[21]) for r in records] == [("100000", 70_300, 250, "5"),
                                                                       ("100030", 70_200, 500, "5")]


async def test_book_is_the_recorded_snapshot(kis: Kis) -> None:
    clock(kis.server, "09:00:06")
    asks, bids = await book(kis, SAMSUNG)
    assert asks == list(zip(BOOK_1["ask_prices"], BOOK_1["ask_qtys"], strict=True))
    assert bids == list(zip(BOOK_1["bid_prices"], BOOK_1["bid_qtys"], strict=True))


async def test_marketable_buy_takes_recorded_levels(kis: Kis) -> None:
    clock(kis.server, "09:00:06")
    r = await kis.order("BUY", SAMSUNG, 2_500, 70_700)
    assert r.json()["rt_cd"] == "0", r.text
    assert [(q, p) for _, q, p, _ in fills(kis.server)] == [(1_000, 70_600), (1_500, 70_700)]
    asks, _ = await book(kis, SAMSUNG)  # what we took is gone from that snapshot
    assert asks[0] == (70_700, 500)
    quote = await kis.price(SAMSUNG)
    assert quote["stck_prpr"] == "70500"  # no impact: our fills do not print


async def test_resting_limit_waits_for_its_queue_then_a_trade_through(kis: Kis) -> None:
    clock(kis.server, "09:59:55")
    r = await kis.order("BUY", SAMSUNG, 100, 70_300)
    assert r.json()["rt_cd"] == "0", r.text
    assert await fills_at(kis, "09:59:59") == []
    # 250 traded at 70,300: 200 ahead of us, then 50 of ours
    assert [(q, p) for _, q, p, _ in await fills_at(kis, "10:00:15")] == [(50, 70_300)]
    # 70,200 trades through: the rest fills at our price
    assert [(q, p) for _, q, p, _ in await fills_at(kis, "10:00:31")] == [(50, 70_300), (50, 70_300)]


async def test_closing_call_fills_at_the_recorded_close(kis: Kis) -> None:
    clock(kis.server, "15:25:00")
    assert (await kis.order("BUY", SAMSUNG, 10, 71_000)).json()["rt_cd"] == "0"
    assert (await kis.order("BUY", SAMSUNG, 10, 70_700)).json()["rt_cd"] == "0"  # below the close
    assert await fills_at(kis, "15:30:04") == []
    assert [(q, p, ts[11:19]) for _, q, p, ts in await fills_at(kis, "15:31:00")] == [(10, 70_800, "15:30:05")]
    orders = {o["price"]: o["status"] for o in kis.server.control("GET", "/sim/orders")}
    assert orders == {71_000: "FILLED", 70_700: "EXPIRED"}


async def test_recorded_vi_and_designation(kis: Kis) -> None:
    clock(kis.server, "10:59:30")
    assert (await kis.price(KAKAO))["vi_cls_code"] == "N"
    clock(kis.server, "11:01:00")
    quote = await kis.price(KAKAO)
    assert quote["vi_cls_code"] == "Y"
    assert (await kis.order("BUY", KAKAO, 5, 46_000)).json()["rt_cd"] == "0"  # into the VI's auction
    assert fills(kis.server) == []
    clock(kis.server, "11:03:00")
    quote = await kis.price(KAKAO)
    assert (quote["vi_cls_code"], quote["stck_prpr"], quote["acml_vol"]) == ("N", "45150", "910")
    assert [(q, p) for _, q, p, _ in fills(kis.server)] == [(5, 45_150)]  # in the VI's uncross
    clock(kis.server, "12:00:01")
    quote = await kis.price(KAKAO)
    assert (quote["iscd_stat_cls_code"], quote["mrkt_warn_cls_code"]) == ("54", "01")


async def _a_day_of_orders(kis: Kis) -> list[tuple[str, int, int, str]]:
    kis.server.reset(iso("08:00:00"), STILL)
    for hms, side, qty, price in (("08:45:00", "BUY", 30, 70_600), ("09:00:06", "BUY", 1_200, 0),
                                  ("09:59:55", "BUY", 300, 70_300), ("14:30:00", "SELL", 500, 70_800)):
        clock(kis.server, hms)
        r = await kis.order(side, SAMSUNG, qty, price)
        assert r.json()["rt_cd"] == "0", r.text
    return await fills_at(kis, "15:40:00")


async def test_the_same_orders_replayed_twice_fill_the_same(kis: Kis) -> None:
    first = await _a_day_of_orders(kis)
    second = await _a_day_of_orders(kis)
    # the same orders at the same market times (to the second: the nearly stopped clock still moves)
    assert [(*f[:3], f[3][:19]) for f in first] == [(*f[:3], f[3][:19]) for f in second]
    assert [(s, q, p) for s, q, p, _ in first] == [
        ("BUY", 30, 70_500),  # the opening call at the recorded open
        ("BUY", 1_000, 70_600), ("BUY", 200, 70_700),  # a market order on the recorded asks
        ("BUY", 50, 70_300), ("BUY", 250, 70_300),  # a resting bid: its queue, then a trade through
        ("SELL", 500, 70_800),  # resting into the closing call, filled at its uncross
    ]


def test_a_closed_day_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sunday.zip"
    dayfile.write_day(path, dayfile.Day(date(2026, 11, 22), "synthetic",
                                        {"symbols": dayfile.table("symbols", [_symbol(SAMSUNG, "삼성전자", 70_000)])}))
    with pytest.raises(ReplayError, match="2026-11-22 is not a trading day"):
        load(path)


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "stock_manager.services.kis_sim"],
    [sys.executable, "-m", "stock_manager", "run", "kis-sim"],
])
@pytest.mark.parametrize("content", [None, b"PK\x03\x04 not a zip at all", "meta-only"])
def test_a_missing_or_garbled_file_fails_with_one_line(tmp_path: Path, command: list[str],
                                                       content: bytes | str | None) -> None:
    path = tmp_path / "day.zip"
    if content == "meta-only":  # a zip with a day file's meta but a garbled table
        import zipfile
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("meta.json", json.dumps({"format": dayfile.FORMAT, "version": dayfile.FORMAT_VERSION,
                                                "trade_date": DAY.isoformat()}))
            for name in dayfile.TABLES:
                z.writestr(f"{name}.parquet", b"garbage")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    done = subprocess.run([*command, "--port", "0", "--replay", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0], done.stderr
