"""The market's own refusals (rules/market_state.py), without a database: designations by the
settings (the default list and a custom one), a VI in force, a price near a static VI trigger with
worked examples, and no cancel while a VI auction runs."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from stock_manager.services.strategy.config import Params, load_config
from stock_manager.services.strategy.port import EntrySignal, MarketSnapshot
from stock_manager.services.strategy.rules.liquidation import may_cancel, step_at
from stock_manager.services.strategy.rules.market_state import (
    EntryGates,
    entry_refusals,
    may_cancel_resting,
    near_static_vi,
)
from stock_manager.services.strategy.rules.scan import run_scan
from stock_manager.services.strategy.runtime import Runtime
from stock_manager.services.strategy.strategies.breakout import Breakout
from stock_manager.shared.settings import SettingsError
from tests.strategy.support import T0

DEFAULT = EntryGates()


def snap(price: int = 10_500, **kw: Any) -> MarketSnapshot:
    base: dict[str, Any] = dict(symbol="005930", market="KOSPI", price=D(price), bid=D(price - 10), ask=D(price),
                                volume=500_000, turnover=D(5_000_000_000), change_pct=D(1), base_price=D(10_000),
                                upper_limit=D(13_000), halted=False, stale=False, ts=T0 - timedelta(seconds=5),
                                open=D(10_000))
    base.update(kw)
    return MarketSnapshot(**base)


# --- designations --------------------------------------------------------------------------------


@pytest.mark.parametrize(("designation", "refused"), [
    ("51", ["designated_51"]), ("52", ["designated_52"]), ("53", ["designated_53"]), ("54", []), ("57", []),
    ("58", ["designated_58"]), ("59", ["designated_59"]), (None, [])])
def test_the_default_list_refuses_51_52_53_58_59(designation: str | None, refused: list[str]) -> None:
    assert entry_refusals(snap(designation=designation), DEFAULT) == refused


def test_warnings_and_liquidation_trading_by_default() -> None:
    assert entry_refusals(snap(warn_code="01"), DEFAULT) == []  # 투자주의 alone is no reason
    assert entry_refusals(snap(warn_code="02"), DEFAULT) == ["market_warning_02"]
    assert entry_refusals(snap(warn_code="03", designation="52"), DEFAULT) == ["designated_52", "market_warning_03"]
    assert entry_refusals(snap(liquidation_trading=True), DEFAULT) == ["liquidation_trading"]


def test_a_custom_list_from_the_settings() -> None:
    cfg = load_config(blocked_designations="54, 57", blocked_warn_codes="", block_liquidation_trading=False,
                      vi_near_pct="0")
    assert (cfg.blocked_designations, cfg.blocked_warn_codes) == (("54", "57"), ())
    rt = Runtime(None, None, cfg, "t", Breakout())  # type: ignore[arg-type]
    g = rt.gates
    assert entry_refusals(snap(designation="51"), g) == []  # no longer blocked
    assert entry_refusals(snap(designation="54"), g) == ["designated_54"]
    assert entry_refusals(snap(designation="57", warn_code="03", liquidation_trading=True), g) == ["designated_57"]
    assert entry_refusals(snap(10_900), g) == []  # near the trigger, but the margin is 0 %
    assert load_config().blocked_designations == ("51", "52", "53", "58", "59")
    with pytest.raises(SettingsError, match="SM_STRATEGY_BLOCKED_DESIGNATIONS"):
        load_config(blocked_designations="51,5x")


# --- VI ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vi", ["STATIC", "DYNAMIC", "BOTH", "AUCTION"])
def test_no_entry_in_a_vi(vi: str) -> None:
    assert entry_refusals(snap(vi=vi), DEFAULT) == ["vi_active"]
    assert entry_refusals(snap(vi=vi, designation="51"), DEFAULT) == ["designated_51", "vi_active"]


@pytest.mark.parametrize(("reference", "price", "near"), [
    # reference 10,000: the triggers are 9,000 and 11,000; 1.5 % inside them is 10,835 and 9,135
    (10_000, 10_830, False), (10_000, 10_835, True), (10_000, 11_200, True),
    (10_000, 9_140, False), (10_000, 9_135, True), (10_000, 10_000, False),
    # reference 52,300: 47,070 and 57,530; near from 56,667.05 up and from 47,776.05 down
    (52_300, 56_600, False), (52_300, 56_700, True), (52_300, 47_800, False), (52_300, 47_750, True),
])
def test_near_a_static_vi_trigger_worked_examples(reference: int, price: int, near: bool) -> None:
    assert near_static_vi(D(price), D(reference), D("1.5")) is near
    want = ["near_static_vi"] if near else []
    assert entry_refusals(snap(price, vi_reference=D(reference)), DEFAULT) == want


def test_the_reference_is_vi_stnd_prc_else_the_open() -> None:
    assert entry_refusals(snap(10_850, vi_reference=None, open=D(10_000)), DEFAULT) == ["near_static_vi"]
    # after a VI the reference is the VI's price, not the open any more
    assert entry_refusals(snap(10_850, vi_reference=D(10_800), open=D(10_000)), DEFAULT) == []
    assert entry_refusals(snap(10_850, vi_reference=None, open=None), DEFAULT) == []  # nothing to judge on
    assert near_static_vi(D(10_700), D(10_000), D(3))  # a wider margin: 3 % inside 11,000 is 10,670


# --- what the scan does with them ---------------------------------------------------------------


class Counting(Breakout):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def universe(self, m: MarketSnapshot, p: Any, now: Any) -> list[str]:
        self.seen.append(m.symbol)
        return []

    def entry(self, m: MarketSnapshot, p: Any, now: Any) -> EntrySignal:
        return EntrySignal(m.symbol, True, True, D(1), ())


def test_the_scan_refuses_before_the_strategy_sees_the_symbol() -> None:
    s = Counting()
    snaps = [snap(symbol="005930", designation="51"), snap(symbol="000660", vi="STATIC"),
             snap(symbol="035720")]
    out = run_scan(s, snaps, Params(), T0, DEFAULT)
    assert s.seen == ["035720"]
    assert dict(out.refused) == {"005930": ("designated_51",), "000660": ("vi_active",)}
    assert out.excluded == {"designated_51": 1, "vi_active": 1}
    assert [e.symbol for e in out.evaluations if e.signal] == ["035720"]
    refused = {e.symbol: e for e in out.evaluations if not e.passed}
    assert refused["005930"].inputs["designation"].startswith("51 관리종목")
    assert refused["000660"].inputs["vi"] == "STATIC"
    assert run_scan(Counting(), snaps, Params(), T0).refused == {}  # without gates: the strategy alone


# --- orders in a VI ------------------------------------------------------------------------------


def test_no_cancel_while_a_vi_auction_runs() -> None:
    assert may_cancel_resting(None) and may_cancel_resting("NONE")
    for vi in ("STATIC", "DYNAMIC", "BOTH", "AUCTION"):
        assert not may_cancel_resting(vi)
    live = step_at(T0.replace(hour=15, minute=18), time(15, 15), flatten=False, after_hours=True, lead_min=15,
                   cancel_guard_s=30)
    assert live is not None
    assert may_cancel(live, 1, 3) and may_cancel(live, 1, 3, vi="NONE")
    assert not may_cancel(live, 1, 3, vi="STATIC")  # a liquidation sell resting in the VI's auction stays
    flatten = step_at(T0, time(15, 15), flatten=True, after_hours=True, lead_min=15, cancel_guard_s=30)
    assert flatten is not None and may_cancel(flatten, 1, 3) and not may_cancel(flatten, 1, 3, vi="AUCTION")
