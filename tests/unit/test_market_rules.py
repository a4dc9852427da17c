from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from stock_manager.shared.calendar import WEEKDAYS, DayEntry, DayKind, TradingCalendar
from stock_manager.shared.clock import KST
from stock_manager.shared.market_rules import (
    FeeSchedule,
    FeeTier,
    Market,
    Phase,
    affordable_qty,
    commission,
    on_tick,
    parse_fee_schedule,
    phase_at,
    price_limits,
    round_to_tick,
    sell_tax,
    sell_tax_rate,
    settlement_date,
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


@pytest.mark.parametrize(("base", "lower", "upper"),
                         [(9_940, 6_960, 12_920), (1_003, 703, 1_303), (200_500, 140_500, 260_500),
                          (1_990, 1_393, 2_585), (70_000, 49_000, 91_000)])
def test_daily_limits_move_one_amount_cut_to_the_base_tick(base: int, lower: int, upper: int) -> None:
    assert price_limits(base) == (lower, upper)


def _krx_limits(base: int, percent: int) -> tuple[int, int]:
    """The KRX rule in integers, written apart from the code under test."""
    tick = tick_size(base)
    amount = base * percent // 100 // tick * tick
    up = base + amount
    return base - amount, up - up % tick_size(up)


def _on_tick_bases(lo: int, hi: int) -> list[int]:
    out, p = [], lo
    while p <= hi:
        out.append(p)
        p += tick_size(p)
    return out


def test_every_on_tick_base_from_1000_to_1000000_follows_the_rule() -> None:
    bases = _on_tick_bases(1_000, 1_000_000)
    assert len(bases) > 6_000
    for base in bases:
        lower, upper = price_limits(base)
        assert (lower, upper) == _krx_limits(base, 30), base
        assert on_tick(lower) and on_tick(upper), base
        assert (base - lower) * 100 <= base * 30 and (upper - base) * 100 <= base * 30, base
    for base in bases[::7]:
        assert price_limits(base, Market.KONEX) == _krx_limits(base, 15), base


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


def test_sell_tax_follows_the_settlement_date() -> None:
    assert settlement_date(date(2025, 12, 26), WEEKDAYS) == date(2025, 12, 30)  # Friday -> Tuesday
    assert settlement_date(date(2025, 12, 30), WEEKDAYS) == date(2026, 1, 1)
    # traded in 2025, settled in 2026: 2026's rate
    assert sell_tax(1_000_000, Market.KOSPI, date(2025, 12, 30), WEEKDAYS) == Decimal(2000)
    assert sell_tax(1_000_000, Market.KOSPI, date(2025, 12, 26), WEEKDAYS) == Decimal(1500)
    assert sell_tax_rate(Market.KOSDAQ, date(2026, 1, 1)) == Decimal("0.0020")
    # on KRX's calendar Dec 31 and Jan 1 are closed: Monday 2025-12-29 settles on 2026-01-02
    krx = TradingCalendar({date(2025, 12, 31): DayEntry(DayKind.CLOSED), date(2026, 1, 1): DayEntry(DayKind.CLOSED)})
    assert settlement_date(date(2025, 12, 29), krx) == date(2026, 1, 2)
    assert sell_tax(1_000_000, Market.KOSPI, date(2025, 12, 29), krx) == Decimal(2000)
    assert sell_tax(1_000_000, Market.KOSPI, date(2025, 12, 29), WEEKDAYS) == Decimal(1500)
    assert sell_tax_rate(Market.KONEX, date(2025, 6, 1)) == Decimal("0.0010")


def test_fee_schedule_tiers_by_trade_value() -> None:
    fees = parse_fee_schedule('[{"below": 2000000, "rate": "0.004971"},'
                              ' {"below": 50000000, "rate": "0.001971", "fixed": 2000}, {"rate": "0.0015"}]')
    assert commission(1_000_000, fees) == Decimal(4971)
    assert commission(2_000_000, fees) == Decimal(3942 + 2000)
    assert commission(100_000_000, fees) == Decimal(150_000)
    assert commission(1_000_000, FeeSchedule.flat(Decimal("0.00015"))) == commission(1_000_000)
    assert commission(999, fees) == Decimal(4)  # the rate's part is cut to whole won


@pytest.mark.parametrize("text", ['[]', '[{"rate": "0.02"}]', '[{"rate": "0.001", "below": 5}]',
                                  '[{"rate": "0.001"}, {"rate": "0.001"}]', '[{"rate": "x"}]', 'not json',
                                  '[{"below": 9, "rate": "0.001"}, {"below": 5, "rate": "0.001"}, {"rate": "0"}]'])
def test_malformed_fee_schedules_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_fee_schedule(text)
    with pytest.raises(ValueError, match="positive"):
        FeeSchedule((FeeTier(Decimal("0.001"), below=-1), FeeTier(Decimal(0))))


def test_affordable_quantity_pays_for_its_commission() -> None:
    fees = parse_fee_schedule('[{"below": 1000000, "rate": "0.005"}, {"rate": "0.001", "fixed": 2000}]')
    for cash, unit in [(1_000_000, 7_000), (999_999, 1_000), (5_000_000, 71_000), (100, 200), (10_000_000, 1_003)]:
        for f in (fees, Decimal("0.00015")):
            q = affordable_qty(cash, unit, f)
            assert q * unit + commission(q * unit, f) <= cash, (cash, unit, f)
            assert (q + 1) * unit + commission((q + 1) * unit, f) > cash, (cash, unit, f)
