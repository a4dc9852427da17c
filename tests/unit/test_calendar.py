"""The KRX trading calendar: worked examples of 2026's rules, and phase_at on a shifted day.

The XKRX examples are KRX's 2026 notice as exchange-calendars carries it; the CSAT day is set
through an override, as an operator would (the library does not know CSAT dates).
"""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from stock_manager.shared.calendar import (
    WEEKDAYS,
    DayEntry,
    DayKind,
    Session,
    TradingCalendar,
    layered,
    xkrx_calendar,
)
from stock_manager.shared.clock import KST
from stock_manager.shared.market_rules import Phase, phase_at


@pytest.fixture(scope="module")
def xkrx() -> TradingCalendar:
    return xkrx_calendar(date(2025, 12, 1), date(2027, 1, 31))


@pytest.mark.parametrize(("day", "why"), [
    (date(2026, 1, 1), "신정"),
    (date(2026, 2, 16), "설날 연휴"),
    (date(2026, 2, 17), "설날"),
    (date(2026, 2, 18), "설날 연휴"),
    (date(2026, 3, 2), "삼일절 대체공휴일 (3/1 is a Sunday)"),
    (date(2026, 5, 1), "근로자의 날"),
    (date(2026, 5, 5), "어린이날"),
    (date(2026, 5, 25), "부처님오신날 대체공휴일 (5/24 is a Sunday)"),
    (date(2026, 6, 3), "제9회 전국동시지방선거 (a correction on top of the library)"),
    (date(2026, 8, 17), "광복절 대체공휴일 (8/15 is a Saturday)"),
    (date(2026, 9, 24), "추석 연휴"),
    (date(2026, 9, 25), "추석"),
    (date(2026, 10, 5), "개천절 대체공휴일 (10/3 is a Saturday)"),
    (date(2026, 10, 9), "한글날"),
    (date(2026, 12, 25), "성탄절"),
    (date(2026, 12, 31), "연말 휴장일"),
])
def test_2026_weekday_holidays_are_closed(xkrx: TradingCalendar, day: date, why: str) -> None:
    assert day.weekday() < 5, why
    assert xkrx.session(day) is None, why
    assert phase_at(datetime.combine(day, time(10), KST), xkrx) is Phase.CLOSED, why


def test_first_trading_day_of_the_year_opens_at_ten(xkrx: TradingCalendar) -> None:
    s = xkrx.session(date(2026, 1, 2))
    assert s == Session(date(2026, 1, 2), time(10), time(15, 30))
    assert s.kind is DayKind.SHIFTED
    at = lambda h, m=0: datetime(2026, 1, 2, h, m, tzinfo=KST)  # noqa: E731
    assert phase_at(at(9, 15), xkrx) is Phase.CLOSED
    assert phase_at(at(9, 30), xkrx) is Phase.PRE_OPEN  # the opening auction moves with the open
    assert phase_at(at(9, 59), xkrx) is Phase.PRE_OPEN
    assert phase_at(at(10), xkrx) is Phase.CONTINUOUS
    assert phase_at(at(15, 20), xkrx) is Phase.CLOSING_AUCTION
    assert xkrx.session(date(2027, 1, 4)) == Session(date(2027, 1, 4), time(10), time(15, 30))


def test_ordinary_days_and_the_turn_of_the_year(xkrx: TradingCalendar) -> None:
    assert xkrx.session(date(2026, 12, 30)) == Session(date(2026, 12, 30))
    assert xkrx.session(date(2026, 12, 30)).kind is DayKind.REGULAR  # type: ignore[union-attr]
    assert xkrx.next_trading_day(date(2026, 12, 30)) == date(2027, 1, 4)
    assert xkrx.next_trading_day(date(2026, 2, 13)) == date(2026, 2, 19)  # over 설날
    assert xkrx.session(date(2026, 11, 21)) is None  # a Saturday


def test_csat_day_override_moves_every_phase(xkrx: TradingCalendar) -> None:
    csat = date(2026, 11, 19)
    assert xkrx.session(csat) == Session(csat)  # the library does not know it
    cal = layered(xkrx.days, {csat: DayEntry(DayKind.SHIFTED, time(10), time(16, 30))}, {})
    s = cal.session(csat)
    assert s is not None
    assert (s.open_auction_start, s.open, s.closing_auction_start, s.close) == (
        time(9, 30), time(10), time(16, 20), time(16, 30))
    at = lambda h, m=0: datetime(2026, 11, 19, h, m, tzinfo=KST)  # noqa: E731
    expected = [((9, 0), Phase.CLOSED), ((9, 45), Phase.PRE_OPEN), ((15, 25), Phase.CONTINUOUS),
                ((16, 19), Phase.CONTINUOUS), ((16, 20), Phase.CLOSING_AUCTION), ((16, 35), Phase.CLOSED),
                ((16, 40), Phase.POST_CLOSE), ((17, 0), Phase.AFTER_HOURS), ((18, 59), Phase.AFTER_HOURS),
                ((19, 0), Phase.CLOSED)]
    for (h, m), phase in expected:
        assert phase_at(at(h, m), cal) is phase, (h, m)
    # the day after is ordinary again
    assert phase_at(datetime(2026, 11, 20, 15, 25, tzinfo=KST), cal) is Phase.CLOSING_AUCTION


def test_kis_answer_decides_open_or_closed_but_keeps_the_hours(xkrx: TradingCalendar) -> None:
    election = date(2026, 6, 3)
    closed_by_kis = layered(xkrx.days, {}, {election: False})
    assert closed_by_kis.session(election) is None
    christmas = date(2026, 12, 25)
    opened_by_kis = layered(xkrx.days, {}, {christmas: True})
    assert opened_by_kis.session(christmas) == Session(christmas)
    csat = date(2026, 11, 19)
    both = layered(xkrx.days, {csat: DayEntry(DayKind.SHIFTED, time(10), time(16, 30))}, {csat: True})
    assert both.session(csat) == Session(csat, time(10), time(16, 30))


def test_overrides_beat_the_library_and_can_close_a_day(xkrx: TradingCalendar) -> None:
    day = date(2026, 6, 4)
    assert xkrx.session(day) == Session(day)
    cal = layered(xkrx.days, {day: DayEntry(DayKind.CLOSED)}, {})
    assert cal.session(day) is None
    assert cal.next_trading_day(date(2026, 6, 2)) == date(2026, 6, 5)  # 6/3 election, 6/4 the override


def test_day_entries_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="closed day"):
        DayEntry(DayKind.CLOSED, time(9), time(15, 30))
    with pytest.raises(ValueError, match="before the close"):
        DayEntry(DayKind.SHIFTED, time(16), time(10))


def test_uncovered_dates_follow_the_weekday_rule() -> None:
    assert not WEEKDAYS.covers(date(2026, 12, 31))
    assert WEEKDAYS.session(date(2026, 12, 31)) == Session(date(2026, 12, 31))
    assert phase_at(datetime(2026, 11, 22, 10, tzinfo=KST), WEEKDAYS) is Phase.CLOSED  # Sunday
