"""Typed views of KIS REST responses, and the parsers that build them.

KIS sends every number as a string, sometimes space-padded, sometimes empty, sometimes with a
fractional part on a whole quantity (``"10.00"``).  The parsers here are the one place that
tolerance lives, so the services see ``int`` quantities, ``int`` won prices and ``Decimal`` rates
and averages.  Order numbers are compared by integer value because real KIS pads them to ten digits
and paper did not always (``"0000006555"`` vs ``"2696"``).

Secrets are never kept: the token and approval key are ``SecretStr``; ``raw`` row dicts (kept for
audit) drop the contact phone number and IP address KIS echoes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final

from pydantic import SecretStr

from stock_manager.shared.clock import KST
from stock_manager.shared.kis.errors import KisParseError

Raw = Mapping[str, Any]

# Personal data KIS echoes in query rows; never worth storing.
_DROPPED_RAW_KEYS: Final = frozenset({"ctac_tlno", "inqr_ip_addr"})


# --- scalar parsing -------------------------------------------------------------------------------


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise KisParseError("boolean where a KIS string was expected")
    return str(value).strip()


def parse_decimal(value: object, name: str = "value") -> Decimal:
    """A KIS number as ``Decimal``; empty means 0 (KIS leaves unused numeric fields blank)."""
    text = _text(value).replace(",", "")
    if not text:
        return Decimal(0)
    try:
        result = Decimal(text)
    except InvalidOperation:
        raise KisParseError(f"{name}: not a number") from None
    if not result.is_finite():
        raise KisParseError(f"{name}: not a finite number")
    return result


def parse_int(value: object, name: str = "value") -> int:
    """A whole KIS number (qty, won price, amount): ``" 0010 "``, ``"+5"``, ``"10.00"`` all work."""
    number = parse_decimal(value, name)
    if number != number.to_integral_value():
        raise KisParseError(f"{name}: expected a whole number")
    return int(number)


def parse_int_opt(value: object, name: str = "value") -> int | None:
    return None if not _text(value) else parse_int(value, name)


def parse_decimal_opt(value: object, name: str = "value") -> Decimal | None:
    return None if not _text(value) else parse_decimal(value, name)


def parse_hhmmss(value: object, name: str = "time") -> time:
    text = _text(value)
    if len(text) != 6 or not text.isdigit():
        raise KisParseError(f"{name}: expected HHMMSS")
    try:
        return time(int(text[:2]), int(text[2:4]), int(text[4:]))
    except ValueError:
        raise KisParseError(f"{name}: not a time of day") from None


def parse_hhmmss_opt(value: object, name: str = "time") -> time | None:
    return None if not _text(value) else parse_hhmmss(value, name)


def parse_yyyymmdd(value: object, name: str = "date") -> date:
    text = _text(value)
    if len(text) != 8 or not text.isdigit():
        raise KisParseError(f"{name}: expected YYYYMMDD")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise KisParseError(f"{name}: not a calendar date") from None


def parse_yyyymmdd_opt(value: object, name: str = "date") -> date | None:
    return None if not _text(value) else parse_yyyymmdd(value, name)


def normalize_odno(value: object) -> str:
    """An order number in canonical form (decimal digits, no leading zeros) for matching.

    Real KIS sends ``"0000006555"``, older paper runs ``"2696"``; both name orders by integer value.
    Non-numeric values are only stripped, so nothing is silently lost.
    """
    text = _text(value)
    return str(int(text)) if text.isdigit() else text


def normalize_odno_opt(value: object) -> str | None:
    text = _text(value)
    return normalize_odno(text) if text else None


def format_odno(odno: str | int) -> str:
    """The ten-digit zero-padded form KIS uses in query results, for sending an ODNO back."""
    text = str(odno).strip()
    return text.zfill(10) if text.isdigit() else text


def _str(row: Raw, key: str) -> str:
    return _text(row.get(key))


def _scrub(row: Raw) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _DROPPED_RAW_KEYS}


def _object(body: Raw, key: str) -> Raw:
    value = body.get(key)
    if isinstance(value, Mapping):
        return value
    if isinstance(value, list) and value and isinstance(value[0], Mapping):
        return value[0]
    raise KisParseError(f"{key}: expected an object")


def _rows(body: Raw, key: str) -> list[Raw]:
    """A list of row objects; KIS sends ``""``, ``[]`` or omits the key when there are none."""
    value = body.get(key)
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
        raise KisParseError(f"{key}: expected a list of objects")
    # A row whose every field is blank names nothing; dropping it beats failing on its date.
    return [r for r in value if any(_text(v) for v in r.values())]


# --- common enums ---------------------------------------------------------------------------------


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def code(self) -> str:
        """``SLL_BUY_DVSN_CD`` / ``SELN_BYOV_CLS``: 01 sell, 02 buy."""
        return "02" if self is Side.BUY else "01"

    @classmethod
    def from_code(cls, code: object) -> Side:
        text = _text(code)
        if text == "02":
            return cls.BUY
        if text == "01":
            return cls.SELL
        raise KisParseError("side: unknown sell/buy code")


class OrdDvsn(StrEnum):
    """The ORD_DVSN codes this system uses (paper supports 00-04 only)."""

    LIMIT = "00"
    MARKET = "01"
    CONDITIONAL_LIMIT = "02"
    BEST_OPPOSITE = "03"
    BEST_SAME_SIDE = "04"
    IOC_LIMIT = "11"
    FOK_LIMIT = "12"
    IOC_MARKET = "13"
    FOK_MARKET = "14"


# ORD_DVSN values that carry no price: ORD_UNPR must be "0".
PRICELESS_ORD_DVSN: Final = frozenset({"01", "03", "04", "05", "06", "13", "14", "15", "16"})


class CcldDvsn(StrEnum):
    """inquire-daily-ccld ``CCLD_DVSN``."""

    ALL = "00"
    FILLED = "01"
    UNFILLED = "02"


# --- OAuth ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: SecretStr
    expires_at: datetime
    token_type: str = "Bearer"


def parse_token(body: Raw, now: datetime) -> AccessToken:
    """``POST /oauth2/tokenP``.  Expiry from the KST timestamp, else ``now + expires_in``."""
    token = _str(body, "access_token")
    if not token:
        raise KisParseError("access_token: missing")
    expires_at: datetime | None = None
    stamp = _str(body, "access_token_token_expired")
    if stamp:
        try:
            expires_at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)
        except ValueError:
            expires_at = None
    if expires_at is None:
        seconds = parse_int(body.get("expires_in"), "expires_in")
        if seconds <= 0:
            raise KisParseError("expires_in: not positive")
        expires_at = now + timedelta(seconds=seconds)
    return AccessToken(
        value=SecretStr(token),
        expires_at=expires_at,
        token_type=_str(body, "token_type") or "Bearer",
    )


@dataclass(frozen=True, slots=True)
class ApprovalKey:
    value: SecretStr


def parse_approval(body: Raw) -> ApprovalKey:
    key = _str(body, "approval_key")
    if not key:
        raise KisParseError("approval_key: missing")
    return ApprovalKey(SecretStr(key))


@dataclass(frozen=True, slots=True)
class Hashkey:
    value: str


def parse_hashkey(body: Raw) -> Hashkey:
    """``POST /uapi/hashkey``.  The echoed ``BODY`` holds the account number and is not kept."""
    value = _str(body, "HASH")
    if not value:
        raise KisParseError("HASH: missing")
    return Hashkey(value)


# --- orders ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderAck:
    """KIS took the order (acceptance, not execution); fills come from notices or daily-ccld."""

    odno: str
    odno_raw: str
    org_no: str
    ord_time: time | None
    msg_cd: str
    msg1: str
    raw: Raw = field(repr=False, compare=False, default_factory=dict)


def parse_order_ack(body: Raw) -> OrderAck:
    """order-cash / order-rvsecncl success.  Keys are UPPERCASE here (lowercase tolerated)."""
    out = _object(body, "output")
    upper = {str(k).upper(): v for k, v in out.items()}
    odno_raw = _text(upper.get("ODNO"))
    if not odno_raw:
        raise KisParseError("ODNO: missing")
    return OrderAck(
        odno=normalize_odno(odno_raw),
        odno_raw=odno_raw,
        org_no=_text(upper.get("KRX_FWDG_ORD_ORGNO")),
        ord_time=parse_hhmmss_opt(upper.get("ORD_TMD"), "ORD_TMD"),
        msg_cd=_str(body, "msg_cd"),
        msg1=_str(body, "msg1"),
        raw=dict(body),
    )


# --- inquire-daily-ccld ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyCcldRow:
    ord_dt: date
    ord_tmd: time | None
    ord_gno_brno: str
    odno: str
    orgn_odno: str | None
    side: Side
    side_name: str
    ord_dvsn_cd: str
    ord_dvsn_name: str
    symbol: str
    name: str
    ord_qty: int
    ord_unpr: int
    tot_ccld_qty: int
    tot_ccld_amt: int
    avg_prvs: Decimal
    rmn_qty: int
    cncl_yn: bool
    cncl_cfrm_qty: int
    rjct_qty: int
    ccld_cndt_name: str
    excg_id_dvsn_cd: str | None
    raw: Raw = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class DailyCcldSummary:
    tot_ord_qty: int
    tot_ccld_qty: int
    tot_ccld_amt: int
    prsm_tlex_smtl: int
    pchs_avg_pric: Decimal


@dataclass(frozen=True, slots=True)
class DailyCcld:
    rows: list[DailyCcldRow]
    summary: DailyCcldSummary | None


def parse_daily_ccld_row(row: Raw) -> DailyCcldRow:
    # The layout says cnc_cfrm_qty, the official example sends cncl_cfrm_qty.
    cancel_key = "cnc_cfrm_qty" if _str(row, "cnc_cfrm_qty") else "cncl_cfrm_qty"
    # The layout spells the exchange field with a capital C.
    exchange = _str(row, "excg_id_dvsn_cd") or _str(row, "excg_id_dvsn_Cd")
    return DailyCcldRow(
        ord_dt=parse_yyyymmdd(row.get("ord_dt"), "ord_dt"),
        ord_tmd=parse_hhmmss_opt(row.get("ord_tmd"), "ord_tmd"),
        ord_gno_brno=_str(row, "ord_gno_brno"),
        odno=normalize_odno(row.get("odno")),
        orgn_odno=normalize_odno_opt(row.get("orgn_odno")),
        side=Side.from_code(row.get("sll_buy_dvsn_cd")),
        side_name=_str(row, "sll_buy_dvsn_cd_name"),
        ord_dvsn_cd=_str(row, "ord_dvsn_cd"),
        ord_dvsn_name=_str(row, "ord_dvsn_name"),
        symbol=_str(row, "pdno"),
        name=_str(row, "prdt_name"),
        ord_qty=parse_int(row.get("ord_qty"), "ord_qty"),
        ord_unpr=parse_int(row.get("ord_unpr"), "ord_unpr"),
        tot_ccld_qty=parse_int(row.get("tot_ccld_qty"), "tot_ccld_qty"),
        tot_ccld_amt=parse_int(row.get("tot_ccld_amt"), "tot_ccld_amt"),
        avg_prvs=parse_decimal(row.get("avg_prvs"), "avg_prvs"),
        rmn_qty=parse_int(row.get("rmn_qty"), "rmn_qty"),
        cncl_yn=_str(row, "cncl_yn").upper() == "Y",
        cncl_cfrm_qty=parse_int(row.get(cancel_key), cancel_key),
        rjct_qty=parse_int(row.get("rjct_qty"), "rjct_qty"),
        ccld_cndt_name=_str(row, "ccld_cndt_name"),
        excg_id_dvsn_cd=exchange or None,
        raw=_scrub(row),
    )


def parse_daily_ccld_summary(obj: Raw) -> DailyCcldSummary:
    return DailyCcldSummary(
        tot_ord_qty=parse_int(obj.get("tot_ord_qty"), "tot_ord_qty"),
        tot_ccld_qty=parse_int(obj.get("tot_ccld_qty"), "tot_ccld_qty"),
        tot_ccld_amt=parse_int(obj.get("tot_ccld_amt"), "tot_ccld_amt"),
        prsm_tlex_smtl=parse_int(obj.get("prsm_tlex_smtl"), "prsm_tlex_smtl"),
        pchs_avg_pric=parse_decimal(obj.get("pchs_avg_pric"), "pchs_avg_pric"),
    )


def parse_daily_ccld(body: Raw) -> DailyCcld:
    """One page of inquire-daily-ccld."""
    summary = None
    if body.get("output2"):
        summary = parse_daily_ccld_summary(_object(body, "output2"))
    return DailyCcld([parse_daily_ccld_row(r) for r in _rows(body, "output1")], summary)


# --- inquire-balance ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BalanceRow:
    symbol: str
    name: str
    trad_dvsn_name: str
    hldg_qty: int
    ord_psbl_qty: int
    bfdy_buy_qty: int
    bfdy_sll_qty: int
    thdt_buy_qty: int
    thdt_sll_qty: int
    pchs_avg_pric: Decimal
    pchs_amt: int
    prpr: int
    evlu_amt: int
    evlu_pfls_amt: int
    evlu_pfls_rt: Decimal
    loan_dt: date | None
    raw: Raw = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class BalanceSummary:
    dnca_tot_amt: int
    nxdy_excc_amt: int
    prvs_rcdl_excc_amt: int
    thdt_buy_amt: int
    thdt_sll_amt: int
    thdt_tlex_amt: int
    scts_evlu_amt: int
    tot_evlu_amt: int
    nass_amt: int
    pchs_amt_smtl_amt: int
    evlu_amt_smtl_amt: int
    evlu_pfls_smtl_amt: int
    raw: Raw = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class Balance:
    rows: list[BalanceRow]
    summary: BalanceSummary | None


def parse_balance_row(row: Raw) -> BalanceRow:
    return BalanceRow(
        symbol=_str(row, "pdno"),
        name=_str(row, "prdt_name"),
        trad_dvsn_name=_str(row, "trad_dvsn_name"),
        hldg_qty=parse_int(row.get("hldg_qty"), "hldg_qty"),
        ord_psbl_qty=parse_int(row.get("ord_psbl_qty"), "ord_psbl_qty"),
        bfdy_buy_qty=parse_int(row.get("bfdy_buy_qty"), "bfdy_buy_qty"),
        bfdy_sll_qty=parse_int(row.get("bfdy_sll_qty"), "bfdy_sll_qty"),
        # KIS spells this one without the underscore.
        thdt_buy_qty=parse_int(row.get("thdt_buyqty", row.get("thdt_buy_qty")), "thdt_buyqty"),
        thdt_sll_qty=parse_int(row.get("thdt_sll_qty"), "thdt_sll_qty"),
        pchs_avg_pric=parse_decimal(row.get("pchs_avg_pric"), "pchs_avg_pric"),
        pchs_amt=parse_int(row.get("pchs_amt"), "pchs_amt"),
        prpr=parse_int(row.get("prpr"), "prpr"),
        evlu_amt=parse_int(row.get("evlu_amt"), "evlu_amt"),
        evlu_pfls_amt=parse_int(row.get("evlu_pfls_amt"), "evlu_pfls_amt"),
        evlu_pfls_rt=parse_decimal(row.get("evlu_pfls_rt"), "evlu_pfls_rt"),
        loan_dt=parse_yyyymmdd_opt(row.get("loan_dt"), "loan_dt"),
        raw=_scrub(row),
    )


def parse_balance_summary(obj: Raw) -> BalanceSummary:
    def num(key: str) -> int:
        return parse_int(obj.get(key), key)

    return BalanceSummary(
        dnca_tot_amt=num("dnca_tot_amt"),
        nxdy_excc_amt=num("nxdy_excc_amt"),
        prvs_rcdl_excc_amt=num("prvs_rcdl_excc_amt"),
        thdt_buy_amt=num("thdt_buy_amt"),
        thdt_sll_amt=num("thdt_sll_amt"),
        thdt_tlex_amt=num("thdt_tlex_amt"),
        scts_evlu_amt=num("scts_evlu_amt"),
        tot_evlu_amt=num("tot_evlu_amt"),
        nass_amt=num("nass_amt"),
        pchs_amt_smtl_amt=num("pchs_amt_smtl_amt"),
        evlu_amt_smtl_amt=num("evlu_amt_smtl_amt"),
        evlu_pfls_smtl_amt=num("evlu_pfls_smtl_amt"),
        raw=dict(obj),
    )


def parse_balance(body: Raw) -> Balance:
    """One page of inquire-balance.  ``output2`` is a one-element list (an object is tolerated)."""
    summary = None
    if body.get("output2"):
        summary = parse_balance_summary(_object(body, "output2"))
    return Balance([parse_balance_row(r) for r in _rows(body, "output1")], summary)


# --- inquire-psbl-order ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PsblOrder:
    """Buying power.  ``nrcvb_*`` is without margin (미수 없이): what a cash-only system may use."""

    ord_psbl_cash: int
    nrcvb_buy_amt: int
    nrcvb_buy_qty: int
    max_buy_amt: int
    max_buy_qty: int
    psbl_qty_calc_unpr: int
    raw: Raw = field(repr=False, compare=False, default_factory=dict)


def parse_psbl_order(body: Raw) -> PsblOrder:
    out = _object(body, "output")

    def num(key: str) -> int:
        return parse_int(out.get(key), key)

    return PsblOrder(
        ord_psbl_cash=num("ord_psbl_cash"),
        nrcvb_buy_amt=num("nrcvb_buy_amt"),
        nrcvb_buy_qty=num("nrcvb_buy_qty"),
        max_buy_amt=num("max_buy_amt"),
        max_buy_qty=num("max_buy_qty"),
        psbl_qty_calc_unpr=num("psbl_qty_calc_unpr"),
        raw=dict(out),
    )


# --- inquire-psbl-rvsecncl ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PsblRvsecnclRow:
    ord_gno_brno: str
    odno: str
    orgn_odno: str | None
    symbol: str
    name: str
    side: Side
    ord_dvsn_cd: str
    ord_dvsn_name: str
    rvse_cncl_dvsn_name: str
    ord_qty: int
    ord_unpr: int
    ord_tmd: time | None
    tot_ccld_qty: int
    tot_ccld_amt: int
    psbl_qty: int
    excg_id_dvsn_cd: str | None
    raw: Raw = field(repr=False, compare=False, default_factory=dict)


def parse_psbl_rvsecncl_row(row: Raw) -> PsblRvsecnclRow:
    return PsblRvsecnclRow(
        ord_gno_brno=_str(row, "ord_gno_brno"),
        odno=normalize_odno(row.get("odno")),
        orgn_odno=normalize_odno_opt(row.get("orgn_odno")),
        symbol=_str(row, "pdno"),
        name=_str(row, "prdt_name"),
        side=Side.from_code(row.get("sll_buy_dvsn_cd")),
        ord_dvsn_cd=_str(row, "ord_dvsn_cd"),
        ord_dvsn_name=_str(row, "ord_dvsn_name"),
        rvse_cncl_dvsn_name=_str(row, "rvse_cncl_dvsn_name"),
        ord_qty=parse_int(row.get("ord_qty"), "ord_qty"),
        ord_unpr=parse_int(row.get("ord_unpr"), "ord_unpr"),
        ord_tmd=parse_hhmmss_opt(row.get("ord_tmd"), "ord_tmd"),
        tot_ccld_qty=parse_int(row.get("tot_ccld_qty"), "tot_ccld_qty"),
        tot_ccld_amt=parse_int(row.get("tot_ccld_amt"), "tot_ccld_amt"),
        psbl_qty=parse_int(row.get("psbl_qty"), "psbl_qty"),
        excg_id_dvsn_cd=_str(row, "excg_id_dvsn_cd") or None,
        raw=_scrub(row),
    )


def parse_psbl_rvsecncl(body: Raw) -> list[PsblRvsecnclRow]:
    return [parse_psbl_rvsecncl_row(r) for r in _rows(body, "output")]


# --- quotations -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    """inquire-price: a REST snapshot of one stock."""

    symbol: str
    price: int
    change: int
    sign: str
    change_pct: Decimal
    open: int
    high: int
    low: int
    upper_limit: int
    lower_limit: int
    base_price: int
    acml_vol: int
    acml_tr_pbmn: int
    vwap: Decimal
    tick: int | None
    status_code: str
    halted: bool
    vi_cls_code: str
    mrkt_warn_cls_code: str
    market_name: str
    liquidation_trading: bool = False  # sltr_yn: 정리매매, the last days before delisting
    raw: Raw = field(repr=False, compare=False, default_factory=dict)


def parse_quote(body: Raw, symbol: str = "") -> Quote:
    out = _object(body, "output")

    def num(key: str) -> int:
        return parse_int(out.get(key), key)

    return Quote(
        symbol=_str(out, "stck_shrn_iscd") or symbol,
        price=num("stck_prpr"),
        change=num("prdy_vrss"),
        sign=_str(out, "prdy_vrss_sign"),
        change_pct=parse_decimal(out.get("prdy_ctrt"), "prdy_ctrt"),
        open=num("stck_oprc"),
        high=num("stck_hgpr"),
        low=num("stck_lwpr"),
        upper_limit=num("stck_mxpr"),
        lower_limit=num("stck_llam"),
        base_price=num("stck_sdpr"),
        acml_vol=num("acml_vol"),
        acml_tr_pbmn=num("acml_tr_pbmn"),
        vwap=parse_decimal(out.get("wghn_avrg_stck_prc"), "wghn_avrg_stck_prc"),
        tick=parse_int_opt(out.get("aspr_unit"), "aspr_unit"),
        status_code=_str(out, "iscd_stat_cls_code"),
        halted=_str(out, "temp_stop_yn").upper() == "Y",
        vi_cls_code=_str(out, "vi_cls_code"),
        mrkt_warn_cls_code=_str(out, "mrkt_warn_cls_code"),
        market_name=_str(out, "rprs_mrkt_kor_name"),
        liquidation_trading=_str(out, "sltr_yn").upper() == "Y",
        raw=dict(out),
    )


@dataclass(frozen=True, slots=True)
class Level:
    price: int
    qty: int


@dataclass(frozen=True, slots=True)
class AskingPrice:
    """inquire-asking-price-exp-ccn: ten levels each side, best first, plus the auction indication."""

    symbol: str
    time: time | None
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    total_ask_qty: int
    total_bid_qty: int
    price: int | None
    expected_price: int | None
    expected_volume: int | None
    raw: Raw = field(repr=False, compare=False, default_factory=dict)


LEVELS: Final = 10


def parse_asking_price(body: Raw, symbol: str = "") -> AskingPrice:
    book = _object(body, "output1")
    auction: Raw = _object(body, "output2") if body.get("output2") else {}
    asks = tuple(
        Level(parse_int(book.get(f"askp{i}"), f"askp{i}"), parse_int(book.get(f"askp_rsqn{i}"), "rsqn"))
        for i in range(1, LEVELS + 1)
    )
    bids = tuple(
        Level(parse_int(book.get(f"bidp{i}"), f"bidp{i}"), parse_int(book.get(f"bidp_rsqn{i}"), "rsqn"))
        for i in range(1, LEVELS + 1)
    )
    return AskingPrice(
        symbol=_str(auction, "stck_shrn_iscd") or symbol,
        time=parse_hhmmss_opt(book.get("aspr_acpt_hour"), "aspr_acpt_hour"),
        asks=asks,
        bids=bids,
        total_ask_qty=parse_int(book.get("total_askp_rsqn"), "total_askp_rsqn"),
        total_bid_qty=parse_int(book.get("total_bidp_rsqn"), "total_bidp_rsqn"),
        price=parse_int_opt(auction.get("stck_prpr"), "stck_prpr"),
        expected_price=parse_int_opt(auction.get("antc_cnpr"), "antc_cnpr"),
        expected_volume=parse_int_opt(auction.get("antc_vol"), "antc_vol"),
        raw={"output1": dict(book), "output2": dict(auction)},
    )


@dataclass(frozen=True, slots=True)
class MinuteBar:
    day: date
    time: time
    open: int
    high: int
    low: int
    close: int
    volume: int
    acml_tr_pbmn: int


@dataclass(frozen=True, slots=True)
class MinuteBars:
    """inquire-time-itemchartprice: up to 30 one-minute bars, newest first, today only."""

    symbol: str
    prev_close: int | None
    price: int | None
    acml_vol: int | None
    bars: list[MinuteBar]


def parse_minute_bar(row: Raw) -> MinuteBar:
    return MinuteBar(
        day=parse_yyyymmdd(row.get("stck_bsop_date"), "stck_bsop_date"),
        time=parse_hhmmss(row.get("stck_cntg_hour"), "stck_cntg_hour"),
        open=parse_int(row.get("stck_oprc"), "stck_oprc"),
        high=parse_int(row.get("stck_hgpr"), "stck_hgpr"),
        low=parse_int(row.get("stck_lwpr"), "stck_lwpr"),
        close=parse_int(row.get("stck_prpr"), "stck_prpr"),
        volume=parse_int(row.get("cntg_vol"), "cntg_vol"),
        acml_tr_pbmn=parse_int(row.get("acml_tr_pbmn"), "acml_tr_pbmn"),
    )


def parse_minute_bars(body: Raw, symbol: str = "") -> MinuteBars:
    head: Raw = _object(body, "output1") if body.get("output1") else {}
    return MinuteBars(
        symbol=symbol,
        prev_close=parse_int_opt(head.get("stck_prdy_clpr"), "stck_prdy_clpr"),
        price=parse_int_opt(head.get("stck_prpr"), "stck_prpr"),
        acml_vol=parse_int_opt(head.get("acml_vol"), "acml_vol"),
        bars=[parse_minute_bar(r) for r in _rows(body, "output2")],
    )


@dataclass(frozen=True, slots=True)
class VolumeRankRow:
    rank: int
    symbol: str
    name: str
    price: int
    sign: str
    change: int
    change_pct: Decimal
    acml_vol: int
    prdy_vol: int
    avrg_vol: int
    vol_inrt: Decimal
    vol_tnrt: Decimal
    acml_tr_pbmn: int
    avrg_tr_pbmn: int
    raw: Raw = field(repr=False, compare=False, default_factory=dict)


def parse_volume_rank_row(row: Raw) -> VolumeRankRow:
    return VolumeRankRow(
        rank=parse_int(row.get("data_rank"), "data_rank"),
        symbol=_str(row, "mksc_shrn_iscd"),
        name=_str(row, "hts_kor_isnm"),
        price=parse_int(row.get("stck_prpr"), "stck_prpr"),
        sign=_str(row, "prdy_vrss_sign"),
        change=parse_int(row.get("prdy_vrss"), "prdy_vrss"),
        change_pct=parse_decimal(row.get("prdy_ctrt"), "prdy_ctrt"),
        acml_vol=parse_int(row.get("acml_vol"), "acml_vol"),
        prdy_vol=parse_int(row.get("prdy_vol"), "prdy_vol"),
        avrg_vol=parse_int(row.get("avrg_vol"), "avrg_vol"),
        vol_inrt=parse_decimal(row.get("vol_inrt"), "vol_inrt"),
        vol_tnrt=parse_decimal(row.get("vol_tnrt"), "vol_tnrt"),
        acml_tr_pbmn=parse_int(row.get("acml_tr_pbmn"), "acml_tr_pbmn"),
        avrg_tr_pbmn=parse_int(row.get("avrg_tr_pbmn"), "avrg_tr_pbmn"),
        raw=dict(row),
    )


def parse_volume_rank(body: Raw) -> list[VolumeRankRow]:
    # The layout writes "Output", the example "output".
    key = "output" if "output" in body else "Output"
    return [parse_volume_rank_row(r) for r in _rows(body, key)]
