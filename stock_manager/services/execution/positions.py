"""Our positions against the broker's: which symbols differ, and whether a difference is drift.

The broker's holdings (inquire-balance ``hldg_qty``) are the truth.  Ours are the net of every fill
recorded.  A difference seen once may be a fill still on its way (a notice not yet applied, an
order the reconciler has not listed yet), so it is a MISMATCH; the same difference again at the
next comparison, after reconcile passes had the chance to add any missing fill, is DRIFT: nothing
we know explains it, and trading must stop until a person looks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def verdict(diffs: Sequence[PositionDiff], previous: Sequence[PositionDiff] | None) -> PositionVerdict:
    """AGREE, MISMATCH on a first sighting, DRIFT when the previous comparison saw the same."""
    if not diffs:
        return PositionVerdict.AGREE
    if previous is not None and sorted(previous) == sorted(diffs):
        return PositionVerdict.DRIFT
    return PositionVerdict.MISMATCH


def describe(diffs: Sequence[PositionDiff], limit: int = 5) -> str:
    parts = [f"{d.symbol} broker {d.broker_qty} / ours {d.our_qty}" for d in diffs[:limit]]
    more = f" and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return ", ".join(parts) + more
