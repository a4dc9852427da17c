"""Our positions against the broker's: the differences, and when a difference is drift."""

from __future__ import annotations

from stock_manager.services.execution.positions import PositionDiff, compare, describe, verdict
from stock_manager.shared.trade_states import PositionVerdict


def test_differences_cover_both_sides() -> None:
    diffs = compare({"005930": 10, "000660": 5, "035720": 0}, {"005930": 10, "000660": 3, "068270": 7})
    assert diffs == [PositionDiff("000660", 5, 3), PositionDiff("068270", 0, 7)]
    assert compare({"005930": 0}, {}) == []


def test_a_difference_is_drift_only_when_it_is_seen_again_unchanged() -> None:
    a = [PositionDiff("000660", 5, 3)]
    assert verdict([], None) is PositionVerdict.AGREE
    assert verdict([], a) is PositionVerdict.AGREE
    assert verdict(a, None) is PositionVerdict.MISMATCH
    assert verdict(a, []) is PositionVerdict.MISMATCH
    assert verdict(a, [PositionDiff("000660", 5, 4)]) is PositionVerdict.MISMATCH
    assert verdict(a, list(a)) is PositionVerdict.DRIFT
    assert PositionDiff.of_json(a[0].as_json()) == a[0]
    assert describe(a) == "000660 broker 5 / ours 3"
    many = [PositionDiff(f"00000{i}", i, 0) for i in range(1, 8)]
    assert describe(many).endswith("and 2 more")


def test_a_difference_with_fills_still_on_their_way_is_never_drift() -> None:
    a = [PositionDiff("943000", 0, 2)]  # a sell filled at the broker, its fill not recorded yet
    assert verdict(a, list(a), in_flight={"943000"}) is PositionVerdict.MISMATCH
    assert verdict(a, list(a), in_flight={"005930"}) is PositionVerdict.DRIFT
