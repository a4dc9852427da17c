"""Number, date and order-number parsing: KIS sends strings, padded, empty or fractional."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from stock_manager.shared.kis import endpoints as ep
from stock_manager.shared.kis import models as m
from stock_manager.shared.kis.endpoints import KisEnv, Tr
from stock_manager.shared.kis.errors import KisParseError


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("10", 10),
        (" 0010 ", 10),
        ("", 0),
        ("   ", 0),
        (None, 0),
        ("+5", 5),
        ("-100", -100),
        ("10.00", 10),
        ("1,234", 1234),
        (7, 7),
    ],
)
def test_parse_int(raw: object, value: int) -> None:
    assert m.parse_int(raw) == value


@pytest.mark.parametrize("raw", ["10.5", "abc", "NaN", "Infinity", True])
def test_parse_int_rejects(raw: object) -> None:
    with pytest.raises(KisParseError):
        m.parse_int(raw, "qty")


def test_parse_decimal_and_optionals() -> None:
    assert m.parse_decimal(" -0.14 ") == Decimal("-0.14")
    assert m.parse_decimal("135440.2517") == Decimal("135440.2517")
    assert m.parse_int_opt("  ") is None
    assert m.parse_decimal_opt("") is None
    assert m.parse_hhmmss(" 093015").isoformat() == "09:30:15"
    assert m.parse_hhmmss_opt("") is None
    assert m.parse_yyyymmdd("20260303") == date(2026, 3, 3)
    with pytest.raises(KisParseError):
        m.parse_hhmmss("9:30")
    with pytest.raises(KisParseError):
        m.parse_yyyymmdd("20260230")


def test_odno_normalisation() -> None:
    assert m.normalize_odno("0000006555") == m.normalize_odno("6555") == "6555"
    assert m.normalize_odno(" 2696 ") == "2696"
    assert m.normalize_odno_opt("") is None
    assert m.format_odno(6555) == "0000006555"
    assert m.format_odno("2696") == "0000002696"


def test_order_ack_tolerates_lowercase_keys() -> None:
    ack = m.parse_order_ack(
        {
            "rt_cd": "0",
            "msg_cd": "APBK0013",
            "msg1": "ok",
            "output": {"krx_fwdg_ord_orgno": "06010", "odno": "0000000001", "ord_tmd": "090000"},
        }
    )
    assert (ack.odno, ack.org_no) == ("1", "06010")
    with pytest.raises(KisParseError):
        m.parse_order_ack({"rt_cd": "0", "output": {"KRX_FWDG_ORD_ORGNO": "06010"}})


def test_daily_ccld_reads_both_cancel_spellings_and_blank_pages() -> None:
    base = {
        "ord_dt": "20260303", "ord_tmd": "090000", "odno": "0000000007", "sll_buy_dvsn_cd": "01",
        "ord_qty": "10", "ord_unpr": "70000", "tot_ccld_qty": "4", "tot_ccld_amt": "280000", "avg_prvs": "70000",
        "rmn_qty": "0", "cncl_yn": "Y", "rjct_qty": "0", "excg_id_dvsn_Cd": "KRX",
    }  # fmt: skip
    layout = m.parse_daily_ccld_row({**base, "cnc_cfrm_qty": "6"})
    example = m.parse_daily_ccld_row({**base, "cncl_cfrm_qty": "6"})
    assert layout.cncl_cfrm_qty == example.cncl_cfrm_qty == 6
    assert layout.side is m.Side.SELL
    assert layout.cncl_yn
    assert layout.excg_id_dvsn_cd == "KRX"
    page = m.parse_daily_ccld({"output1": [{k: "" for k in base}], "output2": {}, "rt_cd": "0"})
    assert page.rows == []
    assert page.summary is None
    assert m.parse_daily_ccld({"output1": "", "rt_cd": "0"}).rows == []


def test_token_expiry_falls_back_to_expires_in() -> None:
    now = datetime(2026, 3, 3, tzinfo=UTC)
    token = m.parse_token({"access_token": "t", "expires_in": "86400"}, now)
    assert (token.expires_at - now).total_seconds() == 86400
    with pytest.raises(KisParseError):
        m.parse_token({"expires_in": 1}, now)


def test_balance_output2_as_object_or_list() -> None:
    summary = {"dnca_tot_amt": "1000"}
    assert (
        m.parse_balance({"output1": [], "output2": [summary]}).summary
        == m.parse_balance({"output1": [], "output2": summary}).summary
    )


def test_tr_ids_per_env() -> None:
    assert ep.tr_id(Tr.ORDER_CASH_BUY, KisEnv.REAL) == "TTTC0012U"
    assert ep.tr_id(Tr.ORDER_CASH_BUY, KisEnv.PAPER) == "VTTC0012U"
    assert ep.tr_id(Tr.ORDER_CASH_SELL, KisEnv.PAPER, legacy=True) == "VTTC0801U"
    assert ep.tr_id(Tr.DAILY_CCLD_OLD, KisEnv.PAPER) == "VTSC9215R"
    assert ep.tr_id(Tr.PRICE, KisEnv.PAPER) == "FHKST01010100"
    assert ep.paper_tr_id("JTTT1002U") == "VTTT1002U"
    assert ep.canonical_tr("VTTC0802U") == (Tr.ORDER_CASH_BUY, KisEnv.PAPER)
    assert ep.canonical_tr("TTTC8001R") == (Tr.DAILY_CCLD_RECENT, KisEnv.REAL)
    assert ep.canonical_tr("NOPE") is None
    assert not ep.is_supported(Tr.VOLUME_RANK, KisEnv.PAPER)
    assert ep.is_supported(Tr.VOLUME_RANK, KisEnv.REAL)


def test_daily_ccld_tr_switches_after_three_months() -> None:
    today = date(2026, 5, 31)
    assert ep.daily_ccld_tr(date(2026, 2, 28), today) is Tr.DAILY_CCLD_RECENT
    assert ep.daily_ccld_tr(date(2026, 2, 27), today) is Tr.DAILY_CCLD_OLD
    assert ep.daily_ccld_tr(date(2026, 3, 3), date(2026, 3, 3)) is Tr.DAILY_CCLD_RECENT
