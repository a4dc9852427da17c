"""The KIS WebSocket wire format: control JSON, caret data frames, AES, subscribe messages.

Pure functions only, so the simulator can build frames with the same code the client parses them
with.  Layouts come from ``kis-api-facts.md`` section 7; field counts are checked because KIS has
changed layouts under running clients before (H0STCNI0 went from 23 to 26 fields in 2025, H0STASP0
frames carry 62 fields although 59 are documented).

Fill notices (H0STCNI0/H0STCNI9) start with the HTS ID, the account number and the holder's name.
Those fields are dropped while parsing and never reach a model, an event or an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from loguru import logger
from pydantic import SecretStr

from stock_manager.shared.clock import KST
from stock_manager.shared.kis.endpoints import (
    WS_NOTICE_TRS,
    WS_ORDERBOOK_TR,
    WS_PINGPONG_TR,
    WS_TRADE_TR,
)
from stock_manager.shared.kis.errors import KisParseError
from stock_manager.shared.kis.models import (
    Level,
    Side,
    normalize_odno,
    parse_decimal,
    parse_hhmmss,
    parse_int,
    parse_int_opt,
    parse_yyyymmdd,
)

TRADE_FIELDS: Final = 46
ORDERBOOK_FIELDS: Final = (59, 62)
NOTICE_FIELDS: Final = (23, 26)
# Indices 0-17 of a notice are the same in both layouts; below that nothing can be trusted.
NOTICE_MIN_FIELDS: Final = 18

FIELD_COUNTS: Final[dict[str, tuple[int, ...]]] = {
    WS_TRADE_TR: (TRADE_FIELDS,),
    WS_ORDERBOOK_TR: ORDERBOOK_FIELDS,
    **{tr: NOTICE_FIELDS for tr in WS_NOTICE_TRS},
}

# KIS has grown layouts by appending fields (H0STASP0 59 -> 62, H0STCNI0 23 -> 26).  A trade record
# longer than its layout is read by its known fields, and the longer layout is logged once per
# count, instead of every trade of the session being refused the day KIS adds a field.
_LONGER_LAYOUTS_SEEN: set[tuple[str, int]] = set()


def _known_fields(tr_id: str, f: list[str], known: int) -> list[str]:
    """The first ``known`` fields of a record that may carry newer fields after them."""
    if len(f) > known:
        if (tr_id, len(f)) not in _LONGER_LAYOUTS_SEEN:
            _LONGER_LAYOUTS_SEEN.add((tr_id, len(f)))
            logger.warning("kis ws: {} records have {} fields, {} known; reading the known ones", tr_id, len(f), known)
        return f[:known]
    return f


# Control codes (msg_cd) the server sends in JSON acks.
OPSP_SUBSCRIBED: Final = "OPSP0000"
OPSP_UNSUBSCRIBED: Final = "OPSP0001"
OPSP_ALREADY_SUBSCRIBED: Final = "OPSP0002"
OPSP_NOT_SUBSCRIBED: Final = "OPSP0003"
OPSP_INTERNAL_ERROR: Final = "OPSP0007"
OPSP_MAX_SUBSCRIBE_OVER: Final = "OPSP0008"
OPSP_INVALID_APPROVAL: Final = "OPSP0011"
OPSP_SESSION_IN_USE: Final = "OPSP8996"


# --- server messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """A JSON answer to a subscribe/unsubscribe (or an unsolicited error).

    ``tr_key`` is None for fill-notice TRs: the server echoes the HTS ID there.
    """

    tr_id: str
    tr_key: str | None
    rt_cd: str
    msg_cd: str
    msg1: str
    encrypt: str = ""
    aes_key: SecretStr | None = field(default=None, repr=False)
    aes_iv: SecretStr | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.rt_cd == "0"

    @property
    def is_unsubscribe_ack(self) -> bool:
        return self.msg_cd == OPSP_UNSUBSCRIBED or self.msg1.upper().startswith("UNSUB")


@dataclass(frozen=True, slots=True)
class PingPong:
    """Server heartbeat; the client must send ``raw`` back unchanged."""

    raw: str


@dataclass(frozen=True, slots=True)
class DataFrame:
    encrypted: bool
    tr_id: str
    count: int
    payload: str = field(repr=False)


ServerMessage = ControlMessage | PingPong | DataFrame


def parse_message(text: str) -> ServerMessage:
    """Tell JSON control messages (first char ``{``) from ``0|TR|NNN|…`` data frames."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return _parse_json(text)
    if stripped[:1] in ("0", "1"):
        return _parse_data(stripped)
    raise KisParseError("websocket message is neither JSON nor a data frame")


def _parse_json(text: str) -> ControlMessage | PingPong:
    try:
        obj = json.loads(text)
    except ValueError:
        raise KisParseError("websocket control message is not valid JSON") from None
    if not isinstance(obj, dict):
        raise KisParseError("websocket control message is not a JSON object")
    header = obj.get("header")
    if not isinstance(header, dict):
        raise KisParseError("websocket control message has no header")
    tr_id = str(header.get("tr_id") or "").strip()
    if tr_id == WS_PINGPONG_TR:
        return PingPong(text)
    body = obj.get("body") if isinstance(obj.get("body"), dict) else {}
    assert isinstance(body, dict)
    output = body.get("output") if isinstance(body.get("output"), dict) else {}
    assert isinstance(output, dict)
    key = str(output.get("key") or "")
    iv = str(output.get("iv") or "")
    tr_key = str(header.get("tr_key") or "").strip()
    return ControlMessage(
        tr_id=tr_id,
        tr_key=None if tr_id in WS_NOTICE_TRS or not tr_key else tr_key,
        rt_cd=str(body.get("rt_cd") or "").strip(),
        msg_cd=str(body.get("msg_cd") or "").strip(),
        msg1=str(body.get("msg1") or "").strip(),
        encrypt=str(header.get("encrypt") or "").strip(),
        aes_key=SecretStr(key) if key else None,
        aes_iv=SecretStr(iv) if iv else None,
    )


def _parse_data(text: str) -> DataFrame:
    parts = text.split("|", 3)
    if len(parts) != 4:
        raise KisParseError("data frame does not have 4 '|'-separated parts")
    flag, tr_id, count, payload = parts
    if flag not in ("0", "1"):
        raise KisParseError("data frame encryption flag is not 0 or 1")
    if not tr_id or not count.isdigit() or int(count) < 1:
        raise KisParseError("data frame has no TR id or a bad record count")
    return DataFrame(encrypted=flag == "1", tr_id=tr_id, count=int(count), payload=payload)


def split_records(tr_id: str, count: int, payload: str) -> list[list[str]]:
    """Split a (decrypted) payload into ``count`` records of the TR's field count.

    A frame with count 004 holds four records back to back in one ``^``-joined string.
    """
    fields = payload.split("^")
    if count <= 1:
        return [fields]
    if len(fields) % count:
        raise KisParseError(f"{tr_id}: {len(fields)} fields do not split into {count} records")
    size = len(fields) // count
    allowed = FIELD_COUNTS.get(tr_id)
    grows = tr_id == WS_TRADE_TR and size > TRADE_FIELDS
    if allowed is not None and size not in allowed and not grows:
        raise KisParseError(f"{tr_id}: {count} records of {size} fields; expected {allowed}")
    return [fields[i : i + size] for i in range(0, len(fields), size)]


# --- AES ------------------------------------------------------------------------------------------


def _aes_cipher(key: str, iv: str) -> Cipher[modes.CBC]:
    key_bytes, iv_bytes = key.encode(), iv.encode()
    if len(key_bytes) != 32 or len(iv_bytes) != 16:
        raise KisParseError("AES key must be 32 bytes and iv 16 bytes")
    return Cipher(algorithms.AES(key_bytes), modes.CBC(iv_bytes))


def aes_decrypt(ciphertext_b64: str, key: str, iv: str) -> str:
    """AES-256-CBC, key/iv = the ack's ``output.key``/``output.iv`` strings, base64, PKCS7."""
    try:
        data = base64.b64decode(ciphertext_b64, validate=True)
    except (binascii.Error, ValueError):
        raise KisParseError("encrypted payload is not base64") from None
    if not data or len(data) % 16:
        raise KisParseError("encrypted payload is not a whole number of AES blocks")
    decryptor = _aes_cipher(key, iv).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        return plain.decode("utf-8")
    except ValueError:
        raise KisParseError("encrypted payload did not decrypt (wrong key/iv?)") from None


def aes_encrypt(plaintext: str, key: str, iv: str) -> str:
    """The inverse of ``aes_decrypt``: what the server (or the simulator) puts on the wire."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = _aes_cipher(key, iv).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


# --- client messages ------------------------------------------------------------------------------


def _registration(approval_key: SecretStr | str, tr_type: str, tr_id: str, tr_key: str, custtype: str) -> str:
    key = approval_key.get_secret_value() if isinstance(approval_key, SecretStr) else approval_key
    message = {
        "header": {"approval_key": key, "custtype": custtype, "tr_type": tr_type, "content-type": "utf-8"},
        "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
    }
    return json.dumps(message, ensure_ascii=False)


def subscribe_message(approval_key: SecretStr | str, tr_id: str, tr_key: str, *, custtype: str = "P") -> str:
    """``tr_type`` 1 registers.  ``tr_key`` is the stock code, or the HTS ID for fill notices."""
    return _registration(approval_key, "1", tr_id, tr_key, custtype)


def unsubscribe_message(approval_key: SecretStr | str, tr_id: str, tr_key: str, *, custtype: str = "P") -> str:
    """``tr_type`` 2 removes (some official docstrings say 0; the official code sends 2)."""
    return _registration(approval_key, "2", tr_id, tr_key, custtype)


def ack_message(
    tr_id: str,
    tr_key: str,
    *,
    msg_cd: str = OPSP_SUBSCRIBED,
    msg1: str = "SUBSCRIBE SUCCESS",
    rt_cd: str = "0",
    key: str | None = None,
    iv: str | None = None,
) -> str:
    """A server ack as KIS sends it; for the simulator and tests."""
    body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
    if key is not None and iv is not None:
        body["output"] = {"iv": iv, "key": key}
    return json.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}, "body": body})


def data_frame(tr_id: str, records: list[list[str]], *, key: str | None = None, iv: str | None = None) -> str:
    """Build ``<enc>|TR|NNN|payload``; encrypted when key/iv are given.  For simulator and tests."""
    payload = "^".join("^".join(r) for r in records)
    if key is not None and iv is not None:
        return f"1|{tr_id}|{len(records):03d}|{aes_encrypt(payload, key, iv)}"
    return f"0|{tr_id}|{len(records):03d}|{payload}"


# --- H0STCNT0: trades -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trade:
    """One print from H0STCNT0 (실시간 체결가)."""

    symbol: str
    time: time
    price: int
    sign: str
    change: int
    change_pct: Decimal
    vwap: Decimal
    open: int
    high: int
    low: int
    ask1: int
    bid1: int
    volume: int
    cum_volume: int
    cum_value: int
    sell_count: int
    buy_count: int
    strength: Decimal
    sell_volume: int
    buy_volume: int
    ccld_dvsn: str
    business_date: date
    session_code: str
    halted: bool
    ask_qty1: int
    bid_qty1: int
    total_ask_qty: int
    total_bid_qty: int
    hour_cls_code: str
    vi_standard_price: int | None

    @property
    def ts(self) -> datetime:
        """Trade time in KST on the business date."""
        return datetime.combine(self.business_date, self.time, tzinfo=KST)


def parse_trade(f: list[str]) -> Trade:
    """One H0STCNT0 record (46 fields; fields KIS appends later are ignored).  A busy feed brings
    tens of thousands a second, so plain-number records take a fast path (``int`` instead of
    ``Decimal`` for the integer fields); anything unusual (blanks, padding, signs, decimals where
    integers belong) goes to the careful parser, which names the field that is wrong."""
    if len(f) < TRADE_FIELDS:
        raise KisParseError(f"H0STCNT0: {len(f)} fields, expected {TRADE_FIELDS}")
    f = _known_fields(WS_TRADE_TR, f, TRADE_FIELDS)
    try:
        return _parse_trade_fast(f)
    except (ValueError, ArithmeticError):
        return _parse_trade_careful(f)


_INT_FIELDS = (2, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 20, 36, 37, 38, 39)


def _parse_trade_fast(f: list[str]) -> Trade:
    hh, bd, vi = f[1], f[33], f[45]
    if len(hh) != 6 or not hh.isdigit() or len(bd) != 8 or not bd.isdigit():
        raise ValueError("time or date")
    n = [int(f[k]) if f[k].isdigit() or (f[k][:1] == "-" and f[k][1:].isdigit()) else _fail() for k in _INT_FIELDS]
    change_pct, vwap, strength = Decimal(f[5]), Decimal(f[6]), Decimal(f[18])
    if not (change_pct.is_finite() and vwap.is_finite() and strength.is_finite()):
        raise ValueError("not finite")
    if vi and not vi.isdigit():
        raise ValueError("vi")
    return Trade(
        f[0].strip(), time(int(hh[:2]), int(hh[2:4]), int(hh[4:])), n[0], f[3].strip(), n[1], change_pct, vwap,
        n[2], n[3], n[4], n[5], n[6], n[7], n[8], n[9], n[10], n[11], strength, n[12], n[13], f[21].strip(),
        date(int(bd[:4]), int(bd[4:6]), int(bd[6:])), f[34].strip(), f[35].strip().upper() == "Y",
        n[14], n[15], n[16], n[17], f[43].strip(), int(vi) if vi else None,
    )


def _fail() -> int:
    raise ValueError("not a plain integer")


def _parse_trade_careful(f: list[str]) -> Trade:
    return Trade(
        symbol=f[0].strip(),
        time=parse_hhmmss(f[1], "STCK_CNTG_HOUR"),
        price=parse_int(f[2], "STCK_PRPR"),
        sign=f[3].strip(),
        change=parse_int(f[4], "PRDY_VRSS"),
        change_pct=parse_decimal(f[5], "PRDY_CTRT"),
        vwap=parse_decimal(f[6], "WGHN_AVRG_STCK_PRC"),
        open=parse_int(f[7], "STCK_OPRC"),
        high=parse_int(f[8], "STCK_HGPR"),
        low=parse_int(f[9], "STCK_LWPR"),
        ask1=parse_int(f[10], "ASKP1"),
        bid1=parse_int(f[11], "BIDP1"),
        volume=parse_int(f[12], "CNTG_VOL"),
        cum_volume=parse_int(f[13], "ACML_VOL"),
        cum_value=parse_int(f[14], "ACML_TR_PBMN"),
        sell_count=parse_int(f[15], "SELN_CNTG_CSNU"),
        buy_count=parse_int(f[16], "SHNU_CNTG_CSNU"),
        strength=parse_decimal(f[18], "CTTR"),
        sell_volume=parse_int(f[19], "SELN_CNTG_SMTN"),
        buy_volume=parse_int(f[20], "SHNU_CNTG_SMTN"),
        ccld_dvsn=f[21].strip(),
        business_date=parse_yyyymmdd(f[33], "BSOP_DATE"),
        session_code=f[34].strip(),
        halted=f[35].strip().upper() == "Y",
        ask_qty1=parse_int(f[36], "ASKP_RSQN1"),
        bid_qty1=parse_int(f[37], "BIDP_RSQN1"),
        total_ask_qty=parse_int(f[38], "TOTAL_ASKP_RSQN"),
        total_bid_qty=parse_int(f[39], "TOTAL_BIDP_RSQN"),
        hour_cls_code=f[43].strip(),
        vi_standard_price=parse_int_opt(f[45], "VI_STND_PRC"),
    )


# --- H0STASP0: order book -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderBook:
    """H0STASP0 (실시간 호가): ten levels each side, best first."""

    symbol: str
    time: time
    hour_cls_code: str
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    total_ask_qty: int
    total_bid_qty: int
    ovtm_total_ask_qty: int
    ovtm_total_bid_qty: int
    expected_price: int
    expected_qty: int
    expected_volume: int
    expected_change: int
    expected_sign: str
    expected_change_pct: Decimal
    cum_volume: int
    total_ask_qty_change: int
    total_bid_qty_change: int
    mid_price: Decimal | None = None
    mid_total_qty: int | None = None
    mid_cls_code: str | None = None


def parse_orderbook(f: list[str]) -> OrderBook:
    if len(f) not in ORDERBOOK_FIELDS:
        raise KisParseError(f"H0STASP0: {len(f)} fields, expected one of {ORDERBOOK_FIELDS}")
    asks = tuple(Level(parse_int(f[3 + i], "ASKP"), parse_int(f[23 + i], "ASKP_RSQN")) for i in range(10))
    bids = tuple(Level(parse_int(f[13 + i], "BIDP"), parse_int(f[33 + i], "BIDP_RSQN")) for i in range(10))
    extended = len(f) == 62
    return OrderBook(
        symbol=f[0].strip(),
        time=parse_hhmmss(f[1], "BSOP_HOUR"),
        hour_cls_code=f[2].strip(),
        asks=asks,
        bids=bids,
        total_ask_qty=parse_int(f[43], "TOTAL_ASKP_RSQN"),
        total_bid_qty=parse_int(f[44], "TOTAL_BIDP_RSQN"),
        ovtm_total_ask_qty=parse_int(f[45], "OVTM_TOTAL_ASKP_RSQN"),
        ovtm_total_bid_qty=parse_int(f[46], "OVTM_TOTAL_BIDP_RSQN"),
        expected_price=parse_int(f[47], "ANTC_CNPR"),
        expected_qty=parse_int(f[48], "ANTC_CNQN"),
        expected_volume=parse_int(f[49], "ANTC_VOL"),
        expected_change=parse_int(f[50], "ANTC_CNTG_VRSS"),
        expected_sign=f[51].strip(),
        expected_change_pct=parse_decimal(f[52], "ANTC_CNTG_PRDY_CTRT"),
        cum_volume=parse_int(f[53], "ACML_VOL"),
        total_ask_qty_change=parse_int(f[54], "TOTAL_ASKP_RSQN_ICDC"),
        total_bid_qty_change=parse_int(f[55], "TOTAL_BIDP_RSQN_ICDC"),
        mid_price=parse_decimal(f[59], "KMID_PRC") if extended and f[59].strip() else None,
        mid_total_qty=parse_int_opt(f[60], "KMID_TOTAL_RSQN") if extended else None,
        mid_cls_code=(f[61].strip() or None) if extended else None,
    )


# --- H0STCNI0 / H0STCNI9: order and fill notices --------------------------------------------------


class RctfCls(StrEnum):
    """RCTF_CLS: what kind of order the notice is about."""

    NORMAL = "0"
    MODIFY = "1"
    CANCEL = "2"


@dataclass(frozen=True, slots=True)
class ExecutionNotice:
    """One order event or fill from the encrypted notice feed (HTS ID/account/name dropped).

    For a fill (``is_fill``) ``qty``/``price`` are the fill's; for an order event they are the
    order's.  ``odno``/``oodno`` are normalised (see ``models.normalize_odno``).
    """

    odno: str
    oodno: str | None
    side: Side
    rctf_cls: RctfCls
    ord_kind: str
    ord_cond: str
    symbol: str
    qty: int
    price: int
    time: time
    is_fill: bool
    is_reject: bool
    acpt_yn: str
    branch_no: str
    order_qty: int
    order_price: int | None
    cond_price: int | None
    exchange: str | None
    name: str
    field_count: int

    @property
    def is_ioc_cancel(self) -> bool:
        """ACPT_YN 3: the IOC/FOK remainder was cancelled by the exchange."""
        return self.acpt_yn == "3"


def parse_notice(f: list[str]) -> ExecutionNotice:
    """Parse a decrypted notice: 26 fields (current), 23 (old), or any count ≥ 18 defensively.

    Indices 0 (CUST_ID), 1 (ACNT_NO) and 17 (ACNT_NAME) are secrets and are never read.
    """
    n = len(f)
    if n < NOTICE_MIN_FIELDS:
        raise KisParseError(f"notice: {n} fields, expected {NOTICE_FIELDS}")
    oodno = normalize_odno(f[3]) if f[3].strip() else None
    if n == 26:
        order_price = parse_int_opt(f[25], "ODER_PRC")
        cond_price = parse_int_opt(f[18], "ORD_COND_PRC")
        exchange: str | None = f[19].strip() or None
        name = f[24].strip()
    elif n == 23:
        order_price = parse_int_opt(f[22], "ODER_PRC")
        cond_price, exchange = None, None
        name = f[21].strip() or f[18].strip()
    else:
        # An unknown layout: ODER_PRC has been the last field in every layout so far, but a fill
        # must not be lost over a field we only guess at.
        try:
            order_price = parse_int_opt(f[-1], "ODER_PRC") if n > NOTICE_MIN_FIELDS else None
        except KisParseError:
            order_price = None
        cond_price, exchange, name = None, None, ""
    try:
        rctf = RctfCls(f[5].strip())
    except ValueError:
        raise KisParseError("notice: unknown RCTF_CLS") from None
    return ExecutionNotice(
        odno=normalize_odno(f[2]),
        oodno=None if oodno in (None, "0") else oodno,
        side=Side.from_code(f[4]),
        rctf_cls=rctf,
        ord_kind=f[6].strip(),
        ord_cond=f[7].strip(),
        symbol=f[8].strip(),
        qty=parse_int(f[9], "CNTG_QTY"),
        price=parse_int(f[10], "CNTG_UNPR"),
        time=parse_hhmmss(f[11], "STCK_CNTG_HOUR"),
        is_reject=f[12].strip() == "1",
        is_fill=f[13].strip() == "2",
        acpt_yn=f[14].strip(),
        branch_no=f[15].strip(),
        order_qty=parse_int(f[16], "ODER_QTY"),
        order_price=order_price,
        cond_price=cond_price,
        exchange=exchange,
        name=name,
        field_count=n,
    )


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record of a TR we subscribe to but do not model; kept as fields so nothing is lost."""

    tr_id: str
    fields: tuple[str, ...]


Record = Trade | OrderBook | ExecutionNotice | RawRecord


def parse_record(tr_id: str, fields: list[str]) -> Record:
    if tr_id == WS_TRADE_TR:
        return parse_trade(fields)
    if tr_id == WS_ORDERBOOK_TR:
        return parse_orderbook(fields)
    if tr_id in WS_NOTICE_TRS:
        return parse_notice(fields)
    return RawRecord(tr_id, tuple(fields))


def decode_frame(frame: DataFrame, aes: Mapping[str, tuple[str, str]] | None = None) -> list[Record]:
    """Decrypt (if flagged) and parse every record of a data frame.

    ``aes`` maps TR id → (key, iv) from that TR's subscribe ack.
    """
    payload = frame.payload
    if frame.encrypted:
        material = (aes or {}).get(frame.tr_id)
        if material is None:
            raise KisParseError(f"{frame.tr_id}: encrypted frame before any ack gave a key")
        payload = aes_decrypt(payload, *material)
    return [parse_record(frame.tr_id, r) for r in split_records(frame.tr_id, frame.count, payload)]
