"""What KIS says about a stock besides its price: a volatility interruption (VI) in force, and the
exchange's designations.  The one place for both vocabularies; migration 0022 holds the same in
its CHECKs (``market.vi_state.state``, ``market.symbols.designation`` / ``warn_code``), and a test
checks that the two agree.

Sources (docs/market-rules.md, "Volatility interruption" and "Designations"): inquire-price's
``vi_cls_code`` (``Y``/``N`` as KIS documents it on H0STMKO0; ``1``/``2``/``3`` naming the VI are
read too), ``iscd_stat_cls_code``, ``mrkt_warn_cls_code``, ``sltr_yn``; H0STCNT0's field 43
HOUR_CLS_CODE (``C`` while a VI's single-price auction runs) and field 45 VI_STND_PRC (the static
VI's reference price).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Final

from stock_manager.shared.market_rules import STATIC_VI_RATE


class ViState(StrEnum):
    """Whether a VI holds the stock in a single-price auction, and which one."""

    NONE = "NONE"
    STATIC = "STATIC"  # 정적 VI: ±10 % from the reference price (vi_cls_code 1)
    DYNAMIC = "DYNAMIC"  # 동적 VI: ±3 % / ±6 % from the last trade (vi_cls_code 2)
    BOTH = "BOTH"  # both at once (vi_cls_code 3)
    AUCTION = "AUCTION"  # a VI auction runs (HOUR_CLS_CODE C, vi_cls_code Y) but which VI is not said


IN_VI: Final = frozenset({ViState.STATIC, ViState.DYNAMIC, ViState.BOTH, ViState.AUCTION})
_KINDS: Final = frozenset({ViState.STATIC, ViState.DYNAMIC, ViState.BOTH})
VI_CODES: Final = {"N": ViState.NONE, "0": ViState.NONE, "Y": ViState.AUCTION, "1": ViState.STATIC,
                   "2": ViState.DYNAMIC, "3": ViState.BOTH}
VI_AUCTION_HOUR_CODE: Final = "C"
# HOUR_CLS_CODE of an auction's indicative records (A post-close, B pre-open, C a VI, D after-hours):
# with no volume such a record is what the auction would uncross at, not a trade
INDICATIVE_HOUR_CODES: Final = frozenset({"A", "B", VI_AUCTION_HOUR_CODE, "D"})


def vi_from_quote(code: str, current: ViState | None = None) -> ViState | None:
    """inquire-price's ``vi_cls_code`` against what is known: ``Y`` is a VI (of the kind known, if
    one is); None when it says nothing this vocabulary knows."""
    state = VI_CODES.get(code.strip().upper())
    if state is ViState.AUCTION and current in _KINDS:
        return current
    return state


def vi_from_trade(hour_cls_code: str, current: ViState | None) -> ViState | None:
    """A print's HOUR_CLS_CODE against what is known: ``C`` is a VI auction (of the kind a quote
    named, if one did); any other code is no VI; a blank says nothing (None)."""
    code = hour_cls_code.strip().upper()
    if not code:
        return None
    if code == VI_AUCTION_HOUR_CODE:
        return current if current in _KINDS else ViState.AUCTION
    return ViState.NONE


def static_vi_triggers(reference: Decimal) -> tuple[Decimal, Decimal]:
    """(lower, upper) prices at which a static VI fires from ``reference`` (``STATIC_VI_RATE``, the
    rule the simulator trips its VIs by)."""
    return reference * (1 - STATIC_VI_RATE), reference * (1 + STATIC_VI_RATE)


# iscd_stat_cls_code (종목상태구분코드).  55 (credit available) and 00 are no designation; the
# column stores the others as KIS sends them.
DESIGNATIONS: Final = {
    "51": "관리종목 (administrative issue)",
    "52": "투자위험 (investment risk)",
    "53": "투자경고 (investment warning)",
    "54": "투자주의 (investment caution)",
    "57": "증거금 100% (full margin)",
    "58": "거래정지 (trading halted)",
    "59": "단기과열 (short-term overheated)",
}
NOT_DESIGNATED: Final = frozenset({"", "00", "55"})
HALTED_DESIGNATION: Final = "58"

# mrkt_warn_cls_code (시장경고구분코드): the same warnings as 54/53/52, in a field of their own
WARN_CODES: Final = {"00": "none", "01": "투자주의 (caution)", "02": "투자경고 (warning)", "03": "투자위험 (risk)"}


def designation_of(code: str) -> str | None:
    """The designation an ``iscd_stat_cls_code`` carries, or None for none."""
    c = code.strip()
    if c in NOT_DESIGNATED or len(c) != 2 or not c.isdigit():
        return None
    return c


def warn_code_of(code: str) -> str | None:
    c = code.strip()
    return c if c in WARN_CODES else None


def describe_designation(code: str) -> str:
    return f"{code} {DESIGNATIONS.get(code, 'unknown designation')}"
