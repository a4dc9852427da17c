"""Every response and frame in the shared KIS sample folder must parse with our parsers.

A new sample file that no case below handles fails ``test_every_sample_is_covered``: the point of
the folder is that nothing in it goes unchecked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from stock_manager.shared.kis import models as m
from stock_manager.shared.kis import ws_frames as wf
from stock_manager.shared.kis.errors import ErrorCategory, classify
from stock_manager.shared.kis.ws_frames import ControlMessage, DataFrame, ExecutionNotice, OrderBook, Trade

from .conftest import SAMPLES, T0, load_sample

pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"KIS sample folder not found at {SAMPLES} (shared/kis-samples beside the repo)"
)


def _error_sample(name: str, expected: ErrorCategory) -> None:
    sample = load_sample(name)
    status = sample["meta"].get("http_status") or 200
    assert classify(status, sample["response_body"]) is expected
    # The same body must classify the same way whatever status it comes with.
    if expected is not ErrorCategory.SERVER_ERROR:
        assert classify(200, sample["response_body"]) is expected
        assert classify(500, sample["response_body"]) is expected


def check_error_egw00121() -> None:
    _error_sample("error_EGW00121_revoke_invalid_token__real.json", ErrorCategory.TOKEN_EXPIRED)


def check_error_egw00133() -> None:
    _error_sample("error_EGW00133_token_too_often__real.json", ErrorCategory.TOKEN_ISSUE_TOO_OFTEN)


def check_error_egw00201() -> None:
    _error_sample("error_EGW00201_rate_limit__real.json", ErrorCategory.RATE_LIMITED)


def check_error_egw02004() -> None:
    _error_sample("error_EGW02004_paper_key_on_real_domain__real.json", ErrorCategory.AUTH_REJECTED)


def check_error_mca00124() -> None:
    _error_sample("error_MCA00124_service_not_found_paper__real.json", ErrorCategory.SERVICE_NOT_FOUND)


def check_fragments() -> None:
    expected = {
        "EGW00215": ErrorCategory.RATE_LIMITED,
        "APBK0952": ErrorCategory.BUSINESS_REJECTED,
        "40600000": None,
    }
    checked = 0
    for item in load_sample("fragments__observed_but_incomplete.json")["items"]:
        if "rt_cd" in item and item.get("msg_cd") in expected:
            body = {k: item[k] for k in ("rt_cd", "msg_cd", "msg1")}
            assert classify(item.get("http_status") or 200, body) is expected[item["msg_cd"]]
            checked += 1
        if item.get("msg_cd") == "40600000":
            # The 2026 paper run's 10-digit ODNOs normalise like the short ones.
            assert [m.normalize_odno(o) for o in item["ODNO"]] == ["8637", "8645"]
    assert checked == 3


def check_hashkey() -> None:
    body = load_sample("hashkey__doc_example.json")["response_body"]
    assert m.parse_hashkey(body).value == body["HASH"]
    assert "계좌번호" not in repr(m.parse_hashkey(body))


def check_asking_price() -> None:
    book = m.parse_asking_price(load_sample("inquire_asking_price_exp_ccn__doc_example.json")["response_body"])
    assert book.symbol == "000660"
    assert len(book.asks) == len(book.bids) == 10
    assert book.asks[0] == m.Level(128000, 69454)
    assert book.bids[9] == m.Level(123000, 15773)
    assert book.expected_price == 128000
    assert book.total_ask_qty == 830005


def check_balance() -> None:
    bal = m.parse_balance(load_sample("inquire_balance__doc_example.json")["response_body"])
    assert [r.hldg_qty for r in bal.rows] == [1657, 3]
    assert bal.rows[0].thdt_buy_qty == 1686
    assert bal.rows[0].pchs_avg_pric == Decimal("135440.2517")
    assert bal.rows[1].loan_dt is not None
    assert bal.summary is not None
    assert bal.summary.dnca_tot_amt == 346455


def check_paper_balance_partial() -> None:
    bal = m.parse_balance(load_sample("paper_inquire_balance__real_partial.json")["response_body_partial"])
    assert bal.rows[0].symbol == "005930"
    assert bal.rows[0].evlu_pfls_amt == -900
    assert bal.summary is not None
    assert bal.summary.thdt_tlex_amt == 1653


def check_daily_ccld() -> None:
    page = m.parse_daily_ccld(load_sample("inquire_daily_ccld__doc_example.json")["response_body"])
    assert [r.odno for r in page.rows] == ["1568197", "1568196"]
    row = page.rows[0]
    assert row.side is m.Side.BUY
    assert row.rjct_qty == 10
    assert row.cncl_cfrm_qty == 0
    assert row.orgn_odno is None
    assert "ctac_tlno" not in row.raw
    assert page.summary is not None
    assert page.summary.tot_ord_qty == 281


def check_price() -> None:
    quote = m.parse_quote(load_sample("inquire_price__doc_example.json")["response_body"])
    assert quote.symbol == "000660"
    assert quote.price == 128500
    assert quote.tick == 500
    assert quote.upper_limit == 167000
    assert quote.vwap == Decimal("129097.23")
    assert quote.halted is False


def check_psbl_order() -> None:
    psbl = m.parse_psbl_order(load_sample("inquire_psbl_order__doc_example.json")["response_body"])
    assert psbl.nrcvb_buy_qty == 1531
    assert psbl.max_buy_qty == 21176


def check_psbl_rvsecncl() -> None:
    rows = m.parse_psbl_rvsecncl(load_sample("inquire_psbl_rvsecncl__doc_example.json")["response_body"])
    assert [(r.odno, r.orgn_odno, r.psbl_qty) for r in rows] == [("1569139", "1569136", 1), ("1569138", None, 1)]


def check_minute_bars() -> None:
    bars = m.parse_minute_bars(load_sample("inquire_time_itemchartprice__doc_example.json")["response_body"], "000660")
    assert len(bars.bars) == 2
    assert bars.bars[0].close == 92500
    assert bars.bars[0].volume == 1383
    assert bars.prev_close == 92400


def check_approval() -> None:
    key = m.parse_approval(load_sample("oauth_approval__doc_example.json")["response_body"])
    assert key.value.get_secret_value().startswith("a2585daf")
    assert "a2585daf" not in repr(key)


def check_revoke() -> None:
    assert classify(200, load_sample("oauth_revokeP__doc_example.json")["response_body"]) is None


def check_token() -> None:
    body = load_sample("oauth_tokenP__doc_example.json")["response_body"]
    token = m.parse_token(body, T0)
    assert token.expires_at.isoformat() == "2023-12-22T08:16:59+09:00"
    assert body["access_token"] not in repr(token)


def _ack(name: str, odno: str, org: str) -> None:
    ack = m.parse_order_ack(load_sample(name)["response_body"])
    assert (ack.odno, ack.org_no) == (odno, org)
    assert ack.ord_time is not None


def check_order_cash() -> None:
    _ack("order_cash__doc_example.json", "1569157", "06010")


def check_order_modify() -> None:
    _ack("order_rvsecncl_modify__doc_example.json", "1569139", "06010")


def check_paper_order() -> None:
    _ack("paper_order_cash_buy__real.json", "2696", "00950")


def check_paper_order_more() -> None:
    acks = [
        m.parse_order_ack(r["response_body"]) for r in load_sample("paper_order_cash_buy__real_more.json")["responses"]
    ]
    assert [a.odno for a in acks] == ["47589", "11774", "51378"]


def check_paper_modify() -> None:
    _ack("paper_order_rvsecncl_modify__real.json", "2933", "00950")


def check_real_order() -> None:
    ack = m.parse_order_ack(load_sample("real_order_cash__real.json")["response_body"])
    assert (ack.odno, ack.odno_raw) == ("6555", "0000006555")


def check_volume_rank() -> None:
    rows = m.parse_volume_rank(load_sample("volume_rank__doc_example.json")["response_body"])
    assert rows[0].symbol == "005930"
    assert [r.rank for r in rows] == list(range(1, len(rows) + 1))


def _check_ws_sample(sample: dict[str, Any]) -> None:
    request = sample["subscribe_request"]
    built = json.loads(
        wf.subscribe_message(
            request["header"]["approval_key"], request["body"]["input"]["tr_id"], request["body"]["input"]["tr_key"]
        )
    )
    assert built == request
    ack = wf.parse_message(json.dumps(sample["subscribe_ack"]))
    assert isinstance(ack, ControlMessage)
    assert ack.ok
    assert ack.aes_key is not None
    assert len(ack.aes_key.get_secret_value()) == 32


def check_ws_asp_doc() -> None:
    sample = load_sample("ws_H0STASP0__doc_example.json")
    _check_ws_sample(sample)
    book = wf.parse_orderbook(sample["data_body"].split("^"))
    assert book.asks[0] == m.Level(71900, 91918)
    assert book.bids[0] == m.Level(71800, 95221)
    assert book.mid_price is None


def check_ws_asp_real() -> None:
    for frame in load_sample("ws_H0STASP0__real_frames.json")["frames"].values():
        msg = wf.parse_message(frame)
        assert isinstance(msg, DataFrame)
        (book,) = wf.decode_frame(msg)
        assert isinstance(book, OrderBook)
        assert book.symbol == "005930"
        assert book.mid_price is not None
        assert book.asks[0].price > book.bids[0].price


def check_ws_cni_doc() -> None:
    sample = load_sample("ws_H0STCNI0__doc_example.json")
    _check_ws_sample(sample)
    ack = wf.parse_message(json.dumps(sample["subscribe_ack"]))
    assert isinstance(ack, ControlMessage)
    assert ack.tr_key is None  # the echoed HTS ID is dropped
    key, iv = sample["subscribe_ack"]["body"]["output"]["key"], sample["subscribe_ack"]["body"]["output"]["iv"]
    for name, is_fill in (("decrypted_body_order_ack", False), ("decrypted_body_fill", True)):
        frame = wf.parse_message(f"1|H0STCNI0|001|{wf.aes_encrypt(sample[name], key, iv)}")
        assert isinstance(frame, DataFrame)
        (notice,) = wf.decode_frame(frame, {"H0STCNI0": (key, iv)})
        assert isinstance(notice, ExecutionNotice)
        assert notice.is_fill is is_fill
        assert notice.odno == "2891"
        assert notice.qty == 1
        assert notice.field_count == 23
        assert "김한투" not in repr(notice)
        assert "1234567801" not in repr(notice)


def check_ws_cnt_doc() -> None:
    sample = load_sample("ws_H0STCNT0__doc_example.json")
    _check_ws_sample(sample)
    trade = wf.parse_trade(sample["data_body"].split("^"))
    assert (trade.symbol, trade.price, trade.change, trade.volume) == ("005930", 71900, -100, 1)
    assert trade.vi_standard_price == 72100
    msg = wf.parse_message(sample["data_frame_prefix_shape"] + sample["data_body"])
    assert isinstance(msg, DataFrame)
    assert isinstance(wf.decode_frame(msg)[0], Trade)


def check_ws_cnt_real() -> None:
    for frame in load_sample("ws_H0STCNT0__real_frames.json")["frames"].values():
        msg = wf.parse_message(frame)
        assert isinstance(msg, DataFrame)
        (trade,) = wf.decode_frame(msg)
        assert isinstance(trade, Trade)
        assert trade.ts.tzinfo is not None
        assert trade.session_code == "20"


def check_ws_acks() -> None:
    for raw in load_sample("ws_subscribe_ack__real.json")["messages"].values():
        ack = wf.parse_message(json.dumps(raw))
        assert isinstance(ack, ControlMessage)
        assert ack.ok
        assert ack.tr_key == "005930"
        assert ack.aes_iv is not None
        assert len(ack.aes_iv.get_secret_value()) == 16


CASES: dict[str, Callable[[], None]] = {
    "error_EGW00121_revoke_invalid_token__real.json": check_error_egw00121,
    "error_EGW00133_token_too_often__real.json": check_error_egw00133,
    "error_EGW00201_rate_limit__real.json": check_error_egw00201,
    "error_EGW02004_paper_key_on_real_domain__real.json": check_error_egw02004,
    "error_MCA00124_service_not_found_paper__real.json": check_error_mca00124,
    "fragments__observed_but_incomplete.json": check_fragments,
    "hashkey__doc_example.json": check_hashkey,
    "inquire_asking_price_exp_ccn__doc_example.json": check_asking_price,
    "inquire_balance__doc_example.json": check_balance,
    "inquire_daily_ccld__doc_example.json": check_daily_ccld,
    "inquire_price__doc_example.json": check_price,
    "inquire_psbl_order__doc_example.json": check_psbl_order,
    "inquire_psbl_rvsecncl__doc_example.json": check_psbl_rvsecncl,
    "inquire_time_itemchartprice__doc_example.json": check_minute_bars,
    "oauth_approval__doc_example.json": check_approval,
    "oauth_revokeP__doc_example.json": check_revoke,
    "oauth_tokenP__doc_example.json": check_token,
    "order_cash__doc_example.json": check_order_cash,
    "order_rvsecncl_modify__doc_example.json": check_order_modify,
    "paper_inquire_balance__real_partial.json": check_paper_balance_partial,
    "paper_order_cash_buy__real.json": check_paper_order,
    "paper_order_cash_buy__real_more.json": check_paper_order_more,
    "paper_order_rvsecncl_modify__real.json": check_paper_modify,
    "real_order_cash__real.json": check_real_order,
    "volume_rank__doc_example.json": check_volume_rank,
    "ws_H0STASP0__doc_example.json": check_ws_asp_doc,
    "ws_H0STASP0__real_frames.json": check_ws_asp_real,
    "ws_H0STCNI0__doc_example.json": check_ws_cni_doc,
    "ws_H0STCNT0__doc_example.json": check_ws_cnt_doc,
    "ws_H0STCNT0__real_frames.json": check_ws_cnt_real,
    "ws_subscribe_ack__real.json": check_ws_acks,
}


def test_every_sample_is_covered() -> None:
    present = {p.name for p in SAMPLES.glob("*.json")}
    assert present - CASES.keys() == set(), "sample files without a parser check"
    assert CASES.keys() - present == set(), "checks for sample files that disappeared"


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_parses(name: str) -> None:
    if not (SAMPLES / name).exists():
        pytest.skip(f"{name} not in {SAMPLES}")
    CASES[name]()
