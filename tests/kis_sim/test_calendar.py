"""The simulator on KRX's calendar: a holiday takes no orders and trades nothing; a special day
(CSAT: 10:00-16:30, set as an operator would) moves the open, the auctions and the close.

The simulator asks the calendar the process installed, as ``stock-manager run kis-sim`` installs
exchange-calendars' XKRX at start; here the test installs one and puts the old one back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, time

import pytest

from stock_manager.shared import calendar as cal
from tests.kis_sim.conftest import Kis, SimServer

CHRISTMAS = "2026-12-25T10:00:00+09:00"  # a Friday, KRX closed
CSAT = date(2026, 11, 19)


@pytest.fixture
def krx_days() -> Iterator[None]:
    before = cal.installed()
    cal.install(cal.xkrx_calendar(date(2026, 11, 1), date(2027, 1, 31)).with_entries(
        {CSAT: cal.DayEntry(cal.DayKind.SHIFTED, time(10), time(16, 30))}))
    yield
    cal.install(before)


def phase_at_sim(sim: SimServer, at: str) -> str:
    """Move the simulator's market to ``at`` and read its phase back."""
    sim.control("POST", "/sim/clock", {"at": at})
    return str(sim.control("GET", "/sim/clock")["phase"])


async def test_a_holiday_takes_no_orders_and_trades_nothing(krx_days: None, sim: SimServer, kis: Kis) -> None:
    sim.reset(CHRISTMAS)
    assert sim.control("GET", "/sim/clock")["phase"] == "CLOSED"
    for args in (("BUY", "005930", 1), ("BUY", "005930", 1, 50_000), ("SELL", "005930", 1)):
        r = (await kis.order(*args)).json()
        assert (r["rt_cd"], r["msg1"]) == ("1", "장종료 입니다."), r
    sim.control("POST", "/sim/clock", {"at": "2026-12-25T14:00:00+09:00"})
    q = await kis.price("005930")
    assert q["acml_vol"] == "0"  # nothing traded all day
    assert sim.control("GET", "/sim/orders") == []


async def test_a_special_day_moves_the_open_and_the_close(krx_days: None, sim: SimServer, kis: Kis) -> None:
    sim.reset("2026-11-19T09:15:00+09:00")
    assert sim.control("GET", "/sim/clock")["phase"] == "CLOSED"  # the opening auction starts at 09:30
    early = (await kis.order("BUY", "005930", 1)).json()
    assert early["msg1"] == "장시작전 입니다."
    assert phase_at_sim(sim, "2026-11-19T09:45:00+09:00") == "PRE_OPEN"
    assert phase_at_sim(sim, "2026-11-19T15:35:00+09:00") == "CONTINUOUS"  # a regular day would be closed
    r = (await kis.order("BUY", "005930", 2)).json()
    assert r["rt_cd"] == "0", r
    for _ in range(50):
        filled = [o for o in sim.control("GET", "/sim/orders") if o["filled_qty"] == 2]
        if filled:
            break
        await asyncio.sleep(0.1)
    assert filled, "a market order in that day's continuous session fills"
    assert phase_at_sim(sim, "2026-11-19T16:25:00+09:00") == "CLOSING_AUCTION"
    assert phase_at_sim(sim, "2026-11-19T16:35:00+09:00") == "CLOSED"
    late = (await kis.order("BUY", "005930", 1)).json()
    assert late["msg1"] == "장종료 입니다."
    assert phase_at_sim(sim, "2026-11-19T16:45:00+09:00") == "POST_CLOSE"
    assert phase_at_sim(sim, "2026-11-20T15:35:00+09:00") == "CLOSED"  # the next day is regular again


async def test_chk_holiday_answers_from_the_calendar_on_real_only(krx_days: None, kis: Kis, pkis: Kis) -> None:
    """국내휴장일조회 (CTCA0903R): KRX's days from BASS_DT on; paper KIS has no such service (OPSQ0002)."""
    path, params = "/uapi/domestic-stock/v1/quotations/chk-holiday", {"BASS_DT": "20261224", "CTX_AREA_NK": "",
                                                                      "CTX_AREA_FK": ""}
    r = await kis.get(path, "CTCA0903R", params)
    body = r.json()
    assert (r.status_code, body["rt_cd"], r.headers["tr_id"]) == (200, "0", "CTCA0903R"), body
    days = {row["bass_dt"]: row for row in body["output"]}
    assert len(days) == 24 and min(days) == "20261224"
    assert (days["20261224"]["opnd_yn"], days["20261224"]["wday_dvsn_cd"]) == ("Y", "05")  # a Thursday
    assert days["20261225"]["opnd_yn"] == "N" and days["20261227"]["opnd_yn"] == "N"  # Christmas, a Sunday
    paper = await pkis.http.get(path, params=params, headers=pkis.headers("CTCA0903R"))  # sent as named
    assert (paper.status_code, paper.json()["msg_cd"]) == (500, "OPSQ0002")
