"""Where KIS lives and what it calls things: paths, TR ids, per-environment defaults.

Everything that differs between 실전 (real) and 모의 (paper) is decided here, so the same client
code runs against real KIS, paper KIS and the project's simulator by changing settings only.
Source: ``kis-api-facts.md`` sections 1-7.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Final


class KisEnv(StrEnum):
    """Which KIS ledger the app key belongs to; picks TR ids, rate limits and page sizes."""

    REAL = "real"
    PAPER = "paper"


REST_BASE_URL: Final[dict[KisEnv, str]] = {
    KisEnv.REAL: "https://openapi.koreainvestment.com:9443",
    KisEnv.PAPER: "https://openapivts.koreainvestment.com:29443",
}

# The official sample connects to ``/tryitout``; the server routes by tr_id, so a settings URL
# (the simulator's ``ws://127.0.0.1:8800``) is used verbatim and only the defaults carry the path.
WS_URL: Final[dict[KisEnv, str]] = {
    KisEnv.REAL: "ws://ops.koreainvestment.com:21000/tryitout",
    KisEnv.PAPER: "ws://ops.koreainvestment.com:31000/tryitout",
}

# Requests per second per app key (KIS notice 2025-08-07).  Paper users report limits even at
# 300 ms spacing, so callers should leave headroom below these.
REQUESTS_PER_SECOND: Final[dict[KisEnv, float]] = {KisEnv.REAL: 20.0, KisEnv.PAPER: 2.0}

TOKEN_ISSUE_MIN_INTERVAL_S: Final = 60.0
MAX_WS_REGISTRATIONS: Final = 41


# --- REST paths -------------------------------------------------------------------------------

TOKEN_PATH: Final = "/oauth2/tokenP"
REVOKE_PATH: Final = "/oauth2/revokeP"
APPROVAL_PATH: Final = "/oauth2/Approval"
HASHKEY_PATH: Final = "/uapi/hashkey"

_TRADING = "/uapi/domestic-stock/v1/trading"
_QUOTES = "/uapi/domestic-stock/v1/quotations"

ORDER_CASH_PATH: Final = f"{_TRADING}/order-cash"
ORDER_RVSECNCL_PATH: Final = f"{_TRADING}/order-rvsecncl"
INQUIRE_DAILY_CCLD_PATH: Final = f"{_TRADING}/inquire-daily-ccld"
INQUIRE_BALANCE_PATH: Final = f"{_TRADING}/inquire-balance"
INQUIRE_PSBL_ORDER_PATH: Final = f"{_TRADING}/inquire-psbl-order"
INQUIRE_PSBL_RVSECNCL_PATH: Final = f"{_TRADING}/inquire-psbl-rvsecncl"
INQUIRE_PRICE_PATH: Final = f"{_QUOTES}/inquire-price"
INQUIRE_ASKING_PRICE_PATH: Final = f"{_QUOTES}/inquire-asking-price-exp-ccn"
INQUIRE_MINUTE_BARS_PATH: Final = f"{_QUOTES}/inquire-time-itemchartprice"
VOLUME_RANK_PATH: Final = f"{_QUOTES}/volume-rank"


# --- TR ids (real, current names; paper ids are derived) ---------------------------------------


class Tr(StrEnum):
    """Real-environment TR ids as KIS names them today; ``tr_id`` derives the one to send."""

    ORDER_CASH_SELL = "TTTC0011U"
    ORDER_CASH_BUY = "TTTC0012U"
    ORDER_RVSECNCL = "TTTC0013U"
    DAILY_CCLD_RECENT = "TTTC0081R"
    DAILY_CCLD_OLD = "CTSC9215R"
    BALANCE = "TTTC8434R"
    PSBL_ORDER = "TTTC8908R"
    PSBL_RVSECNCL = "TTTC0084R"
    PRICE = "FHKST01010100"
    ASKING_PRICE = "FHKST01010200"
    MINUTE_BARS = "FHKST03010200"
    VOLUME_RANK = "FHPST01710000"


# KIS renamed these; the old ids "may be blocked without notice" but many clients still send
# them, so the simulator accepts both and we can fall back by setting.
LEGACY_TR: Final[dict[Tr, str]] = {
    Tr.ORDER_CASH_SELL: "TTTC0801U",
    Tr.ORDER_CASH_BUY: "TTTC0802U",
    Tr.ORDER_RVSECNCL: "TTTC0803U",
    Tr.DAILY_CCLD_RECENT: "TTTC8001R",
    Tr.DAILY_CCLD_OLD: "CTSC9115R",
    Tr.PSBL_RVSECNCL: "TTTC8036R",
}

# "모의투자 미지원": paper answers MCA00124 for these.
REAL_ONLY: Final[frozenset[Tr]] = frozenset({Tr.PSBL_RVSECNCL, Tr.VOLUME_RANK})

_PAPER_PREFIXED = ("T", "J", "C")


def paper_tr_id(real_tr_id: str) -> str:
    """The official sample's rule: a leading T, J or C becomes V on paper; quote TRs stay."""
    if real_tr_id[:1] in _PAPER_PREFIXED:
        return "V" + real_tr_id[1:]
    return real_tr_id


def tr_id(tr: Tr, env: KisEnv, *, legacy: bool = False) -> str:
    """The TR id to put in the ``tr_id`` header for ``tr`` on ``env``."""
    name = LEGACY_TR.get(tr, tr.value) if legacy else tr.value
    return paper_tr_id(name) if env is KisEnv.PAPER else name


def canonical_tr(sent_tr_id: str) -> tuple[Tr, KisEnv] | None:
    """Map any TR id a client may send (real/paper, current/legacy) back to ``Tr`` and env.

    The simulator uses this to accept every spelling; quote TRs are the same on both
    environments, so for them the env reported is REAL.
    """
    for tr in Tr:
        for legacy in (False, True):
            for env in (KisEnv.REAL, KisEnv.PAPER):
                if tr_id(tr, env, legacy=legacy) == sent_tr_id:
                    return tr, env
    return None


def is_supported(tr: Tr, env: KisEnv) -> bool:
    return env is KisEnv.REAL or tr not in REAL_ONLY


# --- WebSocket TR ids ---------------------------------------------------------------------------

WS_TRADE_TR: Final = "H0STCNT0"
WS_ORDERBOOK_TR: Final = "H0STASP0"
WS_NOTICE_TR: Final[dict[KisEnv, str]] = {KisEnv.REAL: "H0STCNI0", KisEnv.PAPER: "H0STCNI9"}
WS_NOTICE_TRS: Final = frozenset(WS_NOTICE_TR.values())
WS_PINGPONG_TR: Final = "PINGPONG"


# --- rows per page --------------------------------------------------------------------------------

DAILY_CCLD_PAGE_SIZE: Final[dict[KisEnv, int]] = {KisEnv.REAL: 100, KisEnv.PAPER: 15}
BALANCE_PAGE_SIZE: Final[dict[KisEnv, int]] = {KisEnv.REAL: 50, KisEnv.PAPER: 20}
PSBL_RVSECNCL_PAGE_SIZE: Final = 50
MINUTE_BARS_PER_CALL: Final = 30
VOLUME_RANK_MAX_ROWS: Final = 30

# Response header ``tr_cont``: F/M = more pages, D/E = last page.  Request: "" first, "N" next.
TR_CONT_MORE: Final = frozenset({"F", "M"})
TR_CONT_NEXT: Final = "N"


def daily_ccld_tr(start: date, today: date) -> Tr:
    """Orders older than three months live in another TR (CTSC9215R)."""
    return Tr.DAILY_CCLD_OLD if start < _months_before(today, 3) else Tr.DAILY_CCLD_RECENT


def _months_before(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month0 = divmod(month_index, 12)
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month0 + 1, d)
        except ValueError:
            continue
    raise AssertionError("unreachable: day 28 exists in every month")
