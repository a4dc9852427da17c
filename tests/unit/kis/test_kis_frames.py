"""WebSocket wire format: control messages, data frames, record splitting, notices, AES."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from stock_manager.shared.kis import ws_frames as wf
from stock_manager.shared.kis.errors import KisParseError
from stock_manager.shared.kis.models import Level, Side
from stock_manager.shared.kis.ws_frames import (
    ControlMessage,
    DataFrame,
    ExecutionNotice,
    OrderBook,
    PingPong,
    RctfCls,
    Trade,
)

from .conftest import HTS_ID

KEY = "abcdefghijklmnopabcdefghijklmnop"
IV = "0123456789abcdef"


def carets(text: str) -> list[str]:
    return text.split("^")


TRADE = carets(
    "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^219853241700^5105^6937"
    "^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^-500^092619^2^200^20230612^20^N^65945"
    "^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"
)

BOOK_59 = carets(
    "005930^093730^0^71900^72000^72100^72200^72300^72400^72500^72600^72700^72800^71800^71700^71600^71500^71400"
    "^71300^71200^71100^71000^70900^91918^117942^92673^79708^106729^141988^176192^113906^134077^104229^95221"
    "^159371^220746^284657^212742^195370^182710^209747^376432^158171^1159362^2095167^0^0^0^0^525579^-72000^5"
    "^-100.00^3159115^0^8^0^0^0"
)


def notice_fields(
    *,
    count: int = 26,
    cntg_yn: str = "2",
    rfus_yn: str = "0",
    acpt_yn: str = "2",
    rctf: str = "0",
    side: str = "02",
    oodno: str = "",
) -> list[str]:
    head = [
        HTS_ID, "8765432101", "0000012345", oodno, side, rctf, "00", "0", "005930", "0000000005", "000071000",
        "093015", rfus_yn, cntg_yn, acpt_yn, "06010", "000000010", "홍길동",
    ]  # fmt: skip
    if count == 26:
        return [*head, "0", "1", "N", "", "", "", "삼성전자", "000071500"]
    assert count == 23
    return [*head, "삼성전자", "", "", "삼성전자", "000071500"]


def test_trade_fields() -> None:
    trade = wf.parse_trade(TRADE)
    assert trade.time.isoformat() == "09:33:54"
    assert (trade.ask1, trade.bid1) == (71900, 71800)
    assert trade.cum_volume == 3052507
    assert trade.cum_value == 219853241700
    assert trade.vwap == Decimal("72023.83")
    assert trade.strength == Decimal("84.90")
    assert trade.business_date.isoformat() == "2023-06-12"
    assert trade.halted is False
    assert (trade.ask_qty1, trade.bid_qty1) == (65945, 216924)
    assert trade.ts.isoformat() == "2023-06-12T09:33:54+09:00"


def test_trade_rejects_wrong_field_count() -> None:
    with pytest.raises(KisParseError, match="46"):
        wf.parse_trade(TRADE[:45])


def test_trade_with_fields_appended_reads_the_known_ones_and_logs_once(log_lines: list[str]) -> None:
    wf._LONGER_LAYOUTS_SEEN.clear()
    longer = [*TRADE, "X1", "2"]
    assert wf.parse_trade(longer) == wf.parse_trade(TRADE)
    records = wf.decode_frame(wf.parse_message(wf.data_frame("H0STCNT0", [longer, longer, longer])))  # type: ignore[arg-type]
    assert [r.price for r in records if isinstance(r, Trade)] == [71900] * 3
    assert len([line for line in log_lines if "48 fields" in line]) == 1, log_lines


def test_orderbook_59_and_62_fields() -> None:
    book59 = wf.parse_orderbook(BOOK_59)
    book62 = wf.parse_orderbook([*BOOK_59, "71850", "1234", "1"])
    for book in (book59, book62):
        assert book.asks[0] == Level(71900, 91918)
        assert book.asks[9] == Level(72800, 104229)
        assert book.bids[0] == Level(71800, 95221)
        assert book.bids[9] == Level(70900, 158171)
        assert book.total_ask_qty == 1159362
        assert book.expected_change_pct == Decimal("-100.00")
    assert book59.mid_price is None
    assert book62.mid_price == Decimal(71850)
    assert book62.mid_total_qty == 1234
    with pytest.raises(KisParseError):
        wf.parse_orderbook(BOOK_59[:58])
    with pytest.raises(KisParseError):
        wf.parse_orderbook([*BOOK_59, "1"])


@pytest.mark.parametrize("count", [23, 26])
def test_notice_layouts_agree_and_drop_secrets(count: int) -> None:
    notice = wf.parse_notice(notice_fields(count=count, oodno="0000012000", rctf="1"))
    assert notice.odno == "12345"
    assert notice.oodno == "12000"
    assert notice.rctf_cls is RctfCls.MODIFY
    assert notice.side is Side.BUY
    assert (notice.qty, notice.price, notice.order_qty, notice.order_price) == (5, 71000, 10, 71500)
    assert notice.is_fill
    assert not notice.is_reject
    assert not notice.is_ioc_cancel
    assert notice.name == "삼성전자"
    assert notice.field_count == count
    text = repr(notice) + str(notice)
    for secret in (HTS_ID, "8765432101", "홍길동"):
        assert secret not in text
    assert not any(secret in str(v) for v in vars_of(notice) for secret in (HTS_ID, "8765432101", "홍길동"))


def vars_of(notice: ExecutionNotice) -> list[object]:
    return [getattr(notice, f) for f in notice.__dataclass_fields__]


def test_notice_event_kinds() -> None:
    assert wf.parse_notice(notice_fields(cntg_yn="1", acpt_yn="1")).is_fill is False
    assert wf.parse_notice(notice_fields(cntg_yn="1", rfus_yn="1")).is_reject
    assert wf.parse_notice(notice_fields(cntg_yn="1", acpt_yn="3")).is_ioc_cancel
    cancel = wf.parse_notice(notice_fields(cntg_yn="1", rctf="2", side="01", oodno="12000"))
    assert (cancel.rctf_cls, cancel.side) == (RctfCls.CANCEL, Side.SELL)
    assert wf.parse_notice(notice_fields(oodno="")).oodno is None


def test_notice_unknown_layout_keeps_indices_0_to_17() -> None:
    fields = [*notice_fields(count=26), "extra"]
    notice = wf.parse_notice(fields)
    assert notice.odno == "12345"
    assert notice.field_count == 27
    with pytest.raises(KisParseError):
        wf.parse_notice(notice_fields()[:17])


def test_multi_record_frames_split_by_field_count() -> None:
    trade2 = list(TRADE)
    trade2[2] = "72000"
    frame = wf.parse_message(wf.data_frame("H0STCNT0", [TRADE, trade2, TRADE, trade2]))
    assert isinstance(frame, DataFrame)
    assert frame.count == 4
    records = wf.decode_frame(frame)
    assert [r.price for r in records if isinstance(r, Trade)] == [71900, 72000, 71900, 72000]

    books = wf.decode_frame(wf.parse_message(wf.data_frame("H0STASP0", [[*BOOK_59, "1", "2", "3"]] * 3)))  # type: ignore[arg-type]
    assert len(books) == 3
    assert all(isinstance(b, OrderBook) and b.mid_cls_code == "3" for b in books)

    with pytest.raises(KisParseError):
        wf.split_records("H0STCNT0", 2, "^".join(TRADE + TRADE[:10]))
    with pytest.raises(KisParseError, match="expected"):
        wf.split_records("H0STCNT0", 2, "^".join(TRADE[:40] * 2))


def test_multi_record_encrypted_notices() -> None:
    frame = wf.data_frame("H0STCNI9", [notice_fields(), notice_fields(cntg_yn="1", count=26)], key=KEY, iv=IV)
    assert frame.startswith("1|H0STCNI9|002|")
    parsed = wf.parse_message(frame)
    assert isinstance(parsed, DataFrame)
    assert parsed.encrypted
    notices = wf.decode_frame(parsed, {"H0STCNI9": (KEY, IV)})
    assert [n.is_fill for n in notices if isinstance(n, ExecutionNotice)] == [True, False]
    with pytest.raises(KisParseError, match="before any ack"):
        wf.decode_frame(parsed, {})


def test_aes_round_trip_and_failures() -> None:
    plain = "^".join(notice_fields())
    cipher = wf.aes_encrypt(plain, KEY, IV)
    assert HTS_ID not in cipher
    assert wf.aes_decrypt(cipher, KEY, IV) == plain
    with pytest.raises(KisParseError):
        wf.aes_decrypt(cipher, "x" * 32, IV)
    with pytest.raises(KisParseError):
        wf.aes_decrypt("not base64!!", KEY, IV)
    with pytest.raises(KisParseError):
        wf.aes_encrypt(plain, "short", IV)


def test_control_messages() -> None:
    ping = '{"header":{"tr_id":"PINGPONG","datetime":"20260914093000"}}'
    assert wf.parse_message(ping) == PingPong(ping)

    over = wf.parse_message(
        wf.ack_message("H0STCNT0", "000660", rt_cd="1", msg_cd="OPSP0008", msg1="MAX SUBSCRIBE OVER")
    )
    assert isinstance(over, ControlMessage)
    assert (over.ok, over.msg_cd, over.tr_key) == (False, "OPSP0008", "000660")

    unsub = wf.parse_message(wf.ack_message("H0STCNT0", "005930", msg1="UNSUBSCRIBE SUCCESS"))
    assert isinstance(unsub, ControlMessage)
    assert unsub.is_unsubscribe_ack

    notice_ack = wf.parse_message(wf.ack_message("H0STCNI0", HTS_ID, key=KEY, iv=IV))
    assert isinstance(notice_ack, ControlMessage)
    assert notice_ack.tr_key is None
    assert HTS_ID not in repr(notice_ack)
    assert KEY not in repr(notice_ack)


@pytest.mark.parametrize(
    "text",
    ["", "garbage", "{not json", "[1,2]", '{"body":{}}', "0|H0STCNT0|001", "2|H0STCNT0|001|x", "0||001|x", "0|X|abc|x"],
)
def test_malformed_messages_raise_parse_errors(text: str) -> None:
    with pytest.raises(KisParseError):
        wf.parse_message(text)


def test_subscribe_builders() -> None:
    sub = json.loads(wf.subscribe_message("approval", "H0STCNT0", "005930"))
    unsub = json.loads(wf.unsubscribe_message("approval", "H0STCNT0", "005930", custtype="B"))
    assert sub["header"] == {"approval_key": "approval", "custtype": "P", "tr_type": "1", "content-type": "utf-8"}
    assert unsub["header"]["tr_type"] == "2"
    assert unsub["header"]["custtype"] == "B"
    assert sub["body"] == {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}}


def test_unknown_tr_is_kept_raw() -> None:
    (record,) = wf.decode_frame(wf.parse_message("0|H0STANC0|001|005930^1^2"))  # type: ignore[arg-type]
    assert record == wf.RawRecord("H0STANC0", ("005930", "1", "2"))


# one record exactly as it arrives on the wire, split the way the feed splits it
_WIRE = (
    "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^219853241700^5105^6937"
    "^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^-500^092619^2^200^20230612^20^N^65945"
    "^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"
)
_TRADE = _WIRE.split("^")


@pytest.mark.parametrize(
    "fields",
    [
        _TRADE,
        [*_TRADE[:45], ""],  # no VI reference price
        [*_TRADE[:2], " 71900 ", *_TRADE[3:]],  # padded: the careful parser's job
        [*_TRADE[:4], "+100", *_TRADE[5:]],  # an explicit plus sign
        [*_TRADE[:12], "", *_TRADE[13:]],  # a blank volume
    ],
    ids=["plain", "no-vi", "padded", "plus-sign", "blank"],
)
def test_the_fast_trade_path_agrees_with_the_careful_one(fields: list[str]) -> None:
    from stock_manager.shared.kis import ws_frames

    try:
        careful: object = ws_frames._parse_trade_careful(fields)
    except KisParseError as exc:
        careful = f"error: {exc}"
    try:
        got: object = ws_frames.parse_trade(fields)
    except KisParseError as exc:
        got = f"error: {exc}"
    assert got == careful
