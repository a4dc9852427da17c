from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from stock_manager.shared.clock import KST
from stock_manager.shared.market_rules import (
    Market,
    Phase,
    commission,
    on_tick,
    phase_at,
    price_limits,
    round_to_tick,
    sell_tax,
    tick_size,
    ticks_away,
)


@pytest.mark.parametrize(
    ("price", "tick"),
    [(1_999, 1), (2_000, 5), (4_995, 5), (5_000, 10), (19_990, 10), (20_000, 50), (49_950, 50),
     (50_000, 100), (199_900, 100), (200_000, 500), (499_500, 500), (500_000, 1_000), (1_234_000, 1_000)],
)
def test_tick_table(price: int, tick: int) -> None:
    assert tick_size(price) == tick
    assert tick_size(price, Market.ETF) == 5


def test_rounding_and_stepping_on_the_grid() -> None:
    assert round_to_tick(70_050) == 70_000 and round_to_tick(70_050, up=True) == 70_100
    assert round_to_tick(49_990, up=True) == 50_000
    assert on_tick(70_100) and not on_tick(70_050)
    assert ticks_away(50_000, -1) == 49_950 and ticks_away(49_950, 1) == 50_000
    assert ticks_away(2_000, -1) == 1_999


def test_daily_limits_are_thirty_percent_on_the_grid() -> None:
    lo, hi = price_limits(70_000)
    assert (lo, hi) == (49_000, 91_000)
    lo, hi = price_limits(10_330)
    assert hi == 13_420 and lo == 7_240 and on_tick(hi) and on_tick(lo)


def test_session_phases_in_kst() -> None:
    mon = datetime(2026, 11, 23, tzinfo=KST)
    assert phase_at(mon.replace(hour=8, minute=45)) is Phase.PRE_OPEN
    assert phase_at(mon.replace(hour=9)) is Phase.CONTINUOUS
    assert phase_at(mon.replace(hour=15, minute=25)) is Phase.CLOSING_AUCTION
    assert phase_at(mon.replace(hour=15, minute=30)) is Phase.CLOSED
    assert phase_at(datetime(2026, 11, 22, 10, tzinfo=KST)) is Phase.CLOSED  # Sunday


def test_costs() -> None:
    assert sell_tax(1_000_000, Market.KOSPI, date(2026, 3, 1)) == Decimal(2000)
    assert sell_tax(1_000_000, Market.KOSPI, date(2025, 3, 1)) == Decimal(1500)
    assert sell_tax(1_000_000, Market.ETF, date(2026, 3, 1)) == 0
    assert commission(1_000_000) == Decimal(150)
