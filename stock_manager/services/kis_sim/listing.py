"""What KRX says about listed symbols beyond their prices: KOSPI200 membership and designations.

KOSPI200 membership sets a symbol's dynamic VI band (3 % instead of 6 %); designations
(관리종목, 시장경보, 증거금 100 %, 단기과열, 정리매매) are only reported, in inquire-price and
``/sim/symbols``, except that 정리매매 and 단기과열 names have no VI (docs/market-rules.md).  Both are
drawn from the universe and the seed, so two runs (and two services) agree; the control API can
change a designation during a test (``POST /sim/designate``).  Halts (거래정지, status 58) stay
``Symbol.halted``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stock_manager.shared.kis.master import MasterRecord
from stock_manager.shared.market_rules import Market

from .universe import Symbol

KOSPI200_SIZE = 200
# iscd_stat_cls_code of a designated symbol; an undesignated one shows 55 (신용가능), a halted one 58
STATUS_NAMES: dict[str, str] = {
    "51": "관리종목",
    "52": "투자위험",
    "53": "투자경고",
    "54": "투자주의",
    "57": "증거금100%",
    "59": "단기과열",
}
NORMAL_STATUS = "55"
HALTED_STATUS = "58"
# mrkt_warn_cls_code (시장경보): 00 none, 01 투자주의, 02 투자경고, 03 투자위험
WARN_CODES = frozenset({"00", "01", "02", "03"})
# the 시장경보 status codes and the warning level each one carries
_WARNING_OF_STATUS = {"54": "01", "53": "02", "52": "03"}
# designated names per status code and, apart, names in 정리매매, per this many listed names
DESIGNATED_PER = 1_000
LIQUIDATING_PER = 2_000


@dataclass(frozen=True, slots=True)
class Designation:
    """A symbol's designations as inquire-price reports them."""

    status: str | None = None  # iscd_stat_cls_code, one of STATUS_NAMES; None when not designated
    warning: str = "00"  # mrkt_warn_cls_code
    liquidation: bool = False  # sltr_yn, 정리매매

    @property
    def vi_exempt(self) -> bool:
        """KRX applies no VI to 정리매매 or 단기과열 names (they trade in 30-minute single-price auctions)."""
        return self.liquidation or self.status == "59"

    @property
    def full_margin(self) -> bool:
        """관리, 시장경고 (경고, 위험), 단기과열, 정리매매 and 증거금100% names: no credit, 100 % margin."""
        return self.liquidation or self.status in ("51", "52", "53", "57", "59")


NO_DESIGNATION = Designation()


def kospi200_members(universe: Mapping[str, Symbol]) -> frozenset[str]:
    """The KOSPI200 of the universe: its largest KOSPI common shares by market cap, 200 of them, or a
    quarter of the KOSPI names in a universe too small for 200 to be an index of the large ones."""
    kospi = [s for s in universe.values() if s.market is Market.KOSPI and not s.halted and s.code.endswith("0")]
    kospi.sort(key=lambda s: (-s.prior_close * s.listed_shares, s.code))
    return frozenset(s.code for s in kospi[: min(KOSPI200_SIZE, len(kospi) // 4)])


def seeded_designations(universe: Mapping[str, Symbol], seed: int, kospi200: frozenset[str]) -> dict[str, Designation]:
    """A handful of designated names: per status code one in every ``DESIGNATED_PER`` listed names (at
    least one), and apart one in every ``LIQUIDATING_PER`` in 정리매매 (관리종목 too, as such names are).

    Only the two thin tiers outside the KOSPI200 are drawn, never a halted name: the well-known names
    tests trade stay ordinary.
    """
    rng = random.Random(f"{seed}:designations")
    pool = sorted(c for c, s in universe.items() if s.tier >= 2 and not s.halted and c not in kospi200)
    per_status = max(1, len(universe) // DESIGNATED_PER)
    liquidating = max(1, len(universe) // LIQUIDATING_PER)
    picked = rng.sample(pool, k=min(len(pool), per_status * len(STATUS_NAMES) + liquidating))
    out: dict[str, Designation] = {}
    for i, code in enumerate(picked):
        if i < per_status * len(STATUS_NAMES):
            status = list(STATUS_NAMES)[i // per_status]
            out[code] = Designation(status, _WARNING_OF_STATUS.get(status, "00"))
        else:
            out[code] = Designation("51", liquidation=True)
    return out


_STATUS_OF_WARNING = {warning: status for status, warning in _WARNING_OF_STATUS.items()}


def master_designations(records: Iterable[MasterRecord], universe: Mapping[str, Symbol]) -> dict[str, Designation]:
    """The designations real KIS master files carry, for the universe's names (``kis-sim --master``):
    관리종목 (51), else a 시장경보 (투자주의 54, 투자경고 53, 투자위험 52, with its warning code), and
    정리매매.  단기과열 is in the files too, as a code whose values are not documented; it is left out."""
    out: dict[str, Designation] = {}
    for r in records:
        if r.code not in universe:
            continue
        warning = r.market_warning if r.market_warning in WARN_CODES else "00"
        status = "51" if r.administrative else _STATUS_OF_WARNING.get(warning)
        if status is not None or r.liquidation:
            out[r.code] = Designation(status, warning, r.liquidation)
    return out
