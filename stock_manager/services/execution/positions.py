"""Our positions against the broker's: which symbols differ, and whether a difference is drift.

The broker's holdings (inquire-balance ``hldg_qty``) are the truth.  Ours are the net of every fill
recorded.  A difference seen once may be a fill still on its way (a notice not yet applied, an
order the reconciler has not listed yet), so it is a MISMATCH; so is any difference in a symbol
with something still in flight.  The same difference again at the next comparison, with nothing in
flight for that symbol, is DRIFT: nothing we know explains it, and trading must stop until a
person looks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from stock_manager.shared.position_checks import describe as shared_describe
from stock_manager.shared.trade_states import PositionVerdict


@dataclass(frozen=True, slots=True, order=True)
class PositionDiff:
    symbol: str
    broker_qty: int
    our_qty: int

    def as_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "broker_qty": self.broker_qty, "our_qty": self.our_qty}

    @staticmethod
    def of_json(d: Mapping[str, Any]) -> PositionDiff:
        return PositionDiff(str(d["symbol"]), int(d["broker_qty"]), int(d["our_qty"]))


def compare(broker: Mapping[str, int], ours: Mapping[str, int]) -> list[PositionDiff]:
    """Every symbol where the quantities differ (a symbol missing on one side holds 0 there)."""
    return sorted(PositionDiff(s, broker.get(s, 0), ours.get(s, 0))
                  for s in set(broker) | set(ours) if broker.get(s, 0) != ours.get(s, 0))


def verdict(diffs: Sequence[PositionDiff], previous: Sequence[PositionDiff] | None,
            in_flight: Set[str] = frozenset()) -> PositionVerdict:
    """AGREE; DRIFT when a difference the previous comparison saw too is still there and nothing is
    on its way for that symbol; MISMATCH otherwise.

    ``in_flight``: symbols with an order not final, fills short of the broker's count, an amendment
    not settled, or a broker order not linked yet.  Their fills may still arrive, so a difference
    there is a mismatch however long it lasts, and becomes drift only once they have settled.
    """
    if not diffs:
        return PositionVerdict.AGREE
    seen = set(previous or ())
    if any(d in seen and d.symbol not in in_flight for d in diffs):
        return PositionVerdict.DRIFT
    return PositionVerdict.MISMATCH


def describe(diffs: Sequence[PositionDiff], limit: int = 5) -> str:
    return shared_describe([d.as_json() for d in diffs], limit)
