"""Pure rules: freshness verdicts, candle folding, notice rows, the symbol master parsers."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime, time, timedelta

import pytest

from stock_manager.services.pricesync import candles as cdl
from stock_manager.services.pricesync.freshness import (
    FreshnessRules,
    Source,
    Status,
    Window,
    WsHealth,
    judge,
    refresh_due,
)
from stock_manager.services.pricesync.notices import NoticeKind, UnrelayableNotice, kind_of, to_row
from stock_manager.services.pricesync.symbols import (
    parse_mst_line,
    parse_sim_symbols,
    read_master_download,
    upsert_params,
)
from stock_manager.shared.clock import KST
from stock_manager.shared.kis.master import KOSDAQ_MST, KOSPI_MST
from stock_manager.shared.kis.models import Side
from stock_manager.shared.kis.ws_frames import ExecutionNotice, RctfCls
from stock_manager.shared.market_rules import Market

RULES = FreshnessRules()
UP = WsHealth(True, frozenset({"005930"}), 1.0)

# --- freshness -----------------------------------------------------------------------------------


def test_window_is_market_time_clamped_by_wall_time() -> None:
    w = Window(15.0, 3.0, 120.0)
    assert w.market_seconds(1.0) == 15.0
    assert w.market_seconds(60.0) == 180.0  # at 60x the floor of 3 wall seconds wins
    assert w.market_seconds(0.05) == 6.0  # at 0.05x the cap of 120 wall seconds wins


@pytest.mark.parametrize(
    ("health", "age", "reason"),
    [
        (WsHealth(False, frozenset(), 0.0), 0.0, "ws disconnected"),
        (WsHealth(True, frozenset(), 0.0), 0.0, "not subscribed"),
        (WsHealth(True, frozenset({"005930"}), 50.0), 0.0, "ws silent 50s"),
        (UP, 61.0, "no trade for 61s"),
    ],
)
def test_ws_is_stale_whenever_the_stream_cannot_vouch(health: WsHealth, age: float, reason: str) -> None:
    v = judge(Source.WS, "005930", data_age_s=age, arrival_lag_s=0.0, speed=1.0, rules=RULES, ws=health)
    assert v.status is Status.STALE
    assert v.reason == reason


def test_ws_fresh_and_rest_ages_out() -> None:
    assert judge(Source.WS, "005930", data_age_s=5.0, arrival_lag_s=0.2, speed=1.0, rules=RULES,
                 ws=UP).status is Status.FRESH
    assert judge(Source.REST, "000660", data_age_s=14.0, arrival_lag_s=0.0, speed=1.0, rules=RULES).status is (
        Status.FRESH)
    stale = judge(Source.REST, "000660", data_age_s=16.0, arrival_lag_s=0.0, speed=1.0, rules=RULES)
    assert stale.status is Status.STALE
    assert stale.reason is not None
    assert stale.reason.startswith("last poll")
    # at 60x the same 16 market seconds are a quarter of a wall second: still fresh
    assert judge(Source.REST, "000660", data_age_s=16.0, arrival_lag_s=0.0, speed=60.0, rules=RULES).status is (
        Status.FRESH)


def test_data_that_arrives_late_is_stale_on_arrival() -> None:
    v = judge(Source.WS, "005930", data_age_s=0.0, arrival_lag_s=90.0, speed=1.0, rules=RULES, ws=UP)
    assert v.status is Status.STALE
    assert v.reason == "arrived 90s late"


def test_refresh_due_is_a_share_of_the_window() -> None:
    assert not refresh_due(7.0, Source.REST, 1.0, RULES)
    assert refresh_due(7.5, Source.REST, 1.0, RULES)


# --- candles ---------------------------------------------------------------------------------------

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=KST)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_fold_builds_ohlcv_per_symbol_and_minute() -> None:
    ticks = [
        ("005930", at(1), 100, 5),
        ("005930", at(2), 105, 1),
        ("000660", at(3), 50, 2),
        ("005930", at(2), 99, 3),  # same second, later arrival: becomes the close
        ("005930", at(61), 101, 7),  # next minute
    ]
    bars, late = cdl.fold(ticks, at(-3600))
    assert late == 0
    by = {(b.symbol, b.bucket): b for b in bars}
    b = by[("005930", T0)]
    assert (b.open, b.high, b.low, b.close, b.volume, b.n_ticks) == (100, 105, 99, 99, 9, 3)
    assert b.turnover == 100 * 5 + 105 + 99 * 3
    assert by[("005930", at(60))].open == 101
    assert by[("000660", T0)].volume == 2


def test_a_tick_arriving_out_of_order_still_sets_open_by_time() -> None:
    bars, _ = cdl.fold([("005930", at(30), 110, 1), ("005930", at(5), 90, 1)], at(-60))
    assert (bars[0].open, bars[0].close) == (90, 110)


def test_closed_minutes_are_not_folded() -> None:
    cutoff = cdl.close_cutoff(at(62), 3.0, 1.5, 1.0)  # 10:01:02 minus 3 s grace
    assert cdl.is_closed(T0 - timedelta(minutes=1), cutoff)
    assert not cdl.is_closed(T0, cutoff)  # 10:00 bar closes at 10:01:03
    bars, late = cdl.fold([("005930", at(-1), 100, 1), ("005930", at(10), 100, 1)], cutoff)
    assert late == 1
    assert [b.bucket for b in bars] == [T0]


def test_grace_is_wall_time_at_high_speed() -> None:
    assert cdl.close_cutoff(at(0), 3.0, 1.5, 60.0) == at(-90)
    assert cdl.close_cutoff(at(0), 3.0, 1.5, 1.0) == at(-3)


def test_merge_is_order_independent() -> None:
    ticks = [("005930", at(s), 100 + (s * 7) % 13, 1 + s % 4) for s in range(50)]
    whole, _ = cdl.fold(ticks, at(-60))
    a, _ = cdl.fold(ticks[25:], at(-60))
    b, _ = cdl.fold(ticks[:25], at(-60))
    merged = cdl.merge(a[0], b[0])
    assert merged == whole[0]


# --- notices ---------------------------------------------------------------------------------------


def notice(**kw: object) -> ExecutionNotice:
    base: dict[str, object] = dict(
        odno="12345", oodno=None, side=Side.BUY, rctf_cls=RctfCls.NORMAL, ord_kind="00", ord_cond="0",
        symbol="005930", qty=5, price=71000, time=time(9, 30, 1), is_fill=True, is_reject=False, acpt_yn="2",
        branch_no="06010", order_qty=10, order_price=71000, cond_price=None, exchange="1", name="삼성전자",
        field_count=26,
    )
    base.update(kw)
    return ExecutionNotice(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "kind"),
    [
        ({}, NoticeKind.FILL),
        ({"is_fill": True, "rctf_cls": RctfCls.MODIFY}, NoticeKind.FILL),
        ({"is_fill": False, "is_reject": True}, NoticeKind.REJECTED),
        ({"is_fill": False, "acpt_yn": "3"}, NoticeKind.IOC_CANCELLED),
        ({"is_fill": False, "rctf_cls": RctfCls.CANCEL}, NoticeKind.CANCELLED),
        ({"is_fill": False, "rctf_cls": RctfCls.MODIFY}, NoticeKind.MODIFIED),
        ({"is_fill": False, "acpt_yn": "1"}, NoticeKind.ACCEPTED),
    ],
)
def test_notice_kinds(kw: dict[str, object], kind: NoticeKind) -> None:
    assert kind_of(notice(**kw)) is kind


def test_notice_row_pads_order_numbers_and_keeps_no_secrets() -> None:
    received = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    row = to_row(notice(oodno="12000"), tr_id="H0STCNI0", trade_date=date(2026, 11, 23), received_ts=received)
    assert (row.odno, row.oodno) == ("0000012345", "0000012000")
    assert (row.side, row.qty, row.price, row.exec_time) == ("BUY", 5, 71000, time(9, 30, 1))
    assert row.kind is NoticeKind.FILL
    text = json.dumps(row.fields, ensure_ascii=False)
    for forbidden in ("cust_id", "acnt_no", "acnt_name", "hts"):
        assert forbidden not in text.lower()
    assert set(row.fields) >= {"odno", "symbol", "qty", "price", "side", "time", "is_fill"}


def test_unusable_order_numbers_are_refused_not_guessed() -> None:
    kw = {"tr_id": "H0STCNI0", "trade_date": date(2026, 11, 23), "received_ts": datetime.now(UTC)}
    with pytest.raises(UnrelayableNotice):
        to_row(notice(odno="A-1"), **kw)  # type: ignore[arg-type]
    with pytest.raises(UnrelayableNotice):
        to_row(notice(odno="12345678901"), **kw)  # type: ignore[arg-type]
    assert to_row(notice(oodno="0"), **kw).oodno is None  # type: ignore[arg-type]


# --- symbol master -----------------------------------------------------------------------------------


def test_sim_symbols_in_the_agreed_shape_and_the_old_list() -> None:
    agreed = {"symbols": [
        {"symbol": "005930", "name": "삼성전자", "market": "KOSPI", "base_price": 71000, "prev_high": 72000,
         "prev_low": 70000, "halted": False},
        {"symbol": "bad!", "name": "x", "market": "KOSPI", "base_price": 1},
    ]}
    [s] = parse_sim_symbols(agreed)
    assert (s.symbol, s.market, s.base_price, s.prev_high, s.prev_low, s.halted) == (
        "005930", Market.KOSPI, 71000, 72000, 70000, False)
    assert s.limits == (49700, 92300)
    old = [{"code": "247540", "name": "에코프로비엠", "market": "KOSDAQ", "prior_close": 121900, "tier": 1,
            "halted": True}]
    [o] = parse_sim_symbols(old)
    assert (o.symbol, o.market, o.base_price, o.halted) == ("247540", Market.KOSDAQ, 121900, True)
    with pytest.raises(ValueError, match="expected"):
        parse_sim_symbols({"nope": 1})


def mst_line(code: str, std: str, name: str, tail_len: int, fields: dict[int, str]) -> str:
    """A master-file line built from the layout: code(9) std(12) name, then the fixed tail."""
    tail = [" "] * tail_len
    for offset, text in fields.items():
        tail[offset : offset + len(text)] = list(text)
    return code.ljust(9) + std.ljust(12) + name + "".join(tail)


def test_kospi_master_line() -> None:
    line = mst_line("005930", "KR7005930003", "삼성전자", KOSPI_MST.tail,
                    {0: "ST", 41: "000071000", 60: "N"})
    info = parse_mst_line(line + "\n", KOSPI_MST)
    assert info is not None
    assert (info.symbol, info.name, info.market, info.base_price, info.halted) == (
        "005930", "삼성전자", Market.KOSPI, 71000, False)


def test_kosdaq_master_line_halted_and_etf_and_elw() -> None:
    halted = mst_line("247540", "KR7247540008", "에코프로비엠", KOSDAQ_MST.tail, {0: "ST", 36: "000121900", 55: "Y"})
    info = parse_mst_line(halted, KOSDAQ_MST)
    assert info is not None
    assert (info.market, info.base_price, info.halted) == (Market.KOSDAQ, 121900, True)
    etf = mst_line("069500", "KR7069500007", "KODEX 200", KOSPI_MST.tail, {0: "EF", 41: "000035000", 60: "N"})
    etf_info = parse_mst_line(etf, KOSPI_MST)
    assert etf_info is not None
    assert etf_info.market is Market.ETF
    elw = mst_line("57J123", "KRA57J123456", "어떤ELW", KOSPI_MST.tail, {0: "EW", 41: "000000100"})
    assert parse_mst_line(elw, KOSPI_MST) is None


def test_master_zip_is_read_as_cp949() -> None:
    text = mst_line("005930", "KR7005930003", "삼성전자", KOSPI_MST.tail, {0: "ST", 41: "000071000", 60: "N"})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("kospi_code.mst", (text + "\r\n").encode("cp949"))
    [info] = read_master_download(buf.getvalue(), "https://example/kospi_code.mst.zip")
    assert info.name == "삼성전자"


def test_upsert_params_carry_limits() -> None:
    [info] = parse_sim_symbols({"symbols": [{"symbol": "005930", "name": "x", "market": "KOSPI",
                                             "base_price": 71000}]})
    p = upsert_params([info], date(2026, 11, 23))
    assert (p["lower_limit"], p["upper_limit"]) == ([49700], [92300])
    assert p["trade_date"] == date(2026, 11, 23)
