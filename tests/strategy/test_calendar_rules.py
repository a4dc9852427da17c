"""Strategy's close on the calendar's days: a special day moves the whole close with its own close
time, and a closed day has no liquidation, no close and no scan window.

Pure: the calendar is handed to ``phase_at`` by installing it for the test (the way a process does
at start), and put back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal as D

import pytest

from stock_manager.services.strategy.rules.liquidation import (
    LiquidityView,
    Stage,
    after_close,
    cancel_cutoff,
    day_over,
    in_liquidation_window,
    liquidation_start,
    session_of,
    start_times,
    step_at,
    uncross_settled,
)
from stock_manager.shared import calendar as cal
from stock_manager.shared.clock import KST
from stock_manager.shared.market_rules import Phase, phase_at
from stock_manager.shared.trade_states import OrderType

CSAT = date(2026, 11, 19)  # 수능: KRX opens at 10:00 and closes at 16:30
HOLIDAY = date(2026, 12, 25)
THIN = LiquidityView("000660", 10, D(600_000_000), D("0.2"))
DEEP = LiquidityView("005930", 10, D(90_000_000_000), D("0.1"))


@pytest.fixture(autouse=True)
def calendar() -> Iterator[cal.TradingCalendar]:
    before = cal.installed()
    c = cal.TradingCalendar({CSAT: cal.DayEntry(cal.DayKind.SHIFTED, time(10), time(16, 30)),
                             HOLIDAY: cal.DayEntry(cal.DayKind.CLOSED)})
    cal.install(c)
    yield c
    cal.install(before)


def on(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=KST)


def test_the_liquidation_lead_counts_from_the_days_own_close() -> None:
    s = session_of(on(CSAT, 12, 0))
    assert s is not None
    assert liquidation_start(15, s) == time(16, 15)
    assert cancel_cutoff(30, s) == time(16, 19, 30)  # before that day's closing auction at 16:20
    assert uncross_settled(s) == time(16, 31)
    assert start_times([DEEP, THIN], 15, 10, s) == {"000660": time(16, 15), "005930": time(16, 20)}
    # at 15:15, when a regular day's liquidation starts, this day still trades on
    assert not in_liquidation_window(on(CSAT, 15, 15), 15)
    assert phase_at(on(CSAT, 15, 25)) is Phase.CONTINUOUS
    assert step_at(on(CSAT, 15, 15), time(16, 15), flatten=False, after_hours=True, lead_min=15,
                   cancel_guard_s=30) is None
    assert not in_liquidation_window(on(CSAT, 16, 14), 15)
    assert in_liquidation_window(on(CSAT, 16, 15), 15)
    assert in_liquidation_window(on(CSAT, 16, 25), 15)  # the closing auction
    assert not in_liquidation_window(on(CSAT, 16, 30), 15)


def test_each_stage_of_the_close_moves_with_the_day() -> None:
    def step(h: int, m: int, s: int = 0) -> tuple[Stage, OrderType | None, datetime, bool] | None:
        st = step_at(on(CSAT, h, m, s), time(16, 15), flatten=False, after_hours=True, lead_min=15,
                     cancel_guard_s=30)
        return None if st is None else (st.stage, st.order_type, st.since, st.may_cancel)

    assert step(16, 15) == (Stage.CLOSING, OrderType.CLMT, on(CSAT, 16, 15), True)
    assert step(16, 19, 30) == (Stage.CLOSING, OrderType.CLMT, on(CSAT, 16, 15), False)
    assert step(16, 40) == (Stage.POST_CLOSE, OrderType.CLOSE, on(CSAT, 16, 40), False)
    assert step(17, 5) == (Stage.AFTER_HOURS, OrderType.AHS, on(CSAT, 17, 0), False)
    flatten = step_at(on(CSAT, 10, 5), time(16, 15), flatten=True, after_hours=True, lead_min=15,
                      cancel_guard_s=30)
    assert flatten is not None
    assert flatten.since == on(CSAT, 10, 0)  # the regular stage starts at that day's open
    assert not day_over(on(CSAT, 16, 30), after_hours=False, flat=True)
    assert day_over(on(CSAT, 16, 31), after_hours=False, flat=True)
    assert not day_over(on(CSAT, 18, 30), after_hours=True, flat=False)  # after-hours runs to 19:00
    assert day_over(on(CSAT, 19, 0), after_hours=True, flat=False)
    assert not after_close(on(CSAT, 16, 0))
    assert after_close(on(CSAT, 16, 30))


def test_a_closed_day_has_no_window_no_step_and_no_day_to_close() -> None:
    for h, m in ((8, 45), (9, 30), (15, 15), (15, 25), (15, 45), (16, 30)):
        now = on(HOLIDAY, h, m)
        assert phase_at(now) is Phase.CLOSED
        assert not in_liquidation_window(now, 15)
        for flatten in (False, True):
            assert step_at(now, time(15, 15), flatten=flatten, after_hours=True, lead_min=15,
                           cancel_guard_s=30) is None
        assert not day_over(now, after_hours=True, flat=True)
    assert after_close(on(HOLIDAY, 10, 0))
    assert session_of(on(HOLIDAY, 10, 0)) is None


def test_regular_days_are_unchanged() -> None:
    day = date(2026, 11, 20)
    assert liquidation_start(15, session_of(on(day, 12, 0))) == time(15, 15) == liquidation_start(15)
    assert in_liquidation_window(on(day, 15, 15), 15)
