"""KIS's chk-holiday as Strategy uses it in paper/live: asked once per trade date, its opnd_yn
recorded in ops.kis_holiday_checks and ranked above the library and the operator; a failed call
leaves the calendar as it was and is tried again at the next reload; an environment without the
service (paper: OPSQ0002) is not asked again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, time

import pytest

from stock_manager import calendar_cmd
from stock_manager.shared import calendar as cal
from stock_manager.shared.clock import ManualClock
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.kis.errors import ServiceNotFound, TransportError
from stock_manager.shared.kis.rest import HolidayDay
from tests.strategy.conftest import make_app
from tests.strategy.support import T0
from tests.support.pg import TestDb

DAY = T0.date()  # 2026-03-10, a trading day for the library


@pytest.fixture(autouse=True)
def restore_calendar() -> Iterator[None]:
    before = cal.installed()
    yield
    cal.install(before)


class FakeKis:
    def __init__(self, opened: bool, fail: int = 0, error: Exception | None = None) -> None:
        self.opened, self.fail, self.calls = opened, fail, 0
        self.error = error or TransportError("connection reset")

    async def chk_holiday(self, day: date) -> list[HolidayDay]:
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise self.error
        return [HolidayDay(day, self.opened, self.opened, self.opened, self.opened),
                HolidayDay(date(2026, 3, 11), True, True, True, True)]


async def test_kis_is_asked_once_a_day_and_its_closed_day_wins(
        db: TestDb, strategy_pool: Pool, admin_pool: Pool, clock: ManualClock) -> None:
    await calendar_cmd.refresh(db.admin_url, date(2026, 3, 1), date(2026, 3, 31))
    app = make_app(strategy_pool, clock)
    app.calendar.kis = kis = FakeKis(opened=False)
    loaded = await app.calendar.refresh()
    assert loaded.session(DAY) is None and cal.installed() is loaded
    await app.calendar.refresh()
    assert kis.calls == 1
    async with admin_pool.connection() as conn:
        rows = await (await conn.execute("SELECT trade_date, opnd_yn FROM ops.kis_holiday_checks"
                                          " ORDER BY trade_date")).fetchall()
    assert [(r["trade_date"], r["opnd_yn"]) for r in rows] == [(DAY, "N"), (date(2026, 3, 11), "Y")]


async def test_an_open_answer_keeps_the_operators_hours(
        db: TestDb, strategy_pool: Pool, admin_pool: Pool, clock: ManualClock) -> None:
    async with admin_pool.connection() as conn:
        await cal.set_override(conn, DAY, cal.DayEntry(cal.DayKind.SHIFTED, time(10), time(16, 30)))
    app = make_app(strategy_pool, clock)
    app.calendar.kis = FakeKis(opened=True)
    loaded = await app.calendar.refresh()
    assert loaded.session(DAY) == cal.Session(DAY, time(10), time(16, 30))


async def test_a_failed_call_leaves_the_calendar_and_is_tried_again(
        db: TestDb, strategy_pool: Pool, clock: ManualClock) -> None:
    await calendar_cmd.refresh(db.admin_url, date(2026, 3, 1), date(2026, 3, 31))
    app = make_app(strategy_pool, clock)
    app.calendar.kis = kis = FakeKis(opened=False, fail=1)
    assert (await app.calendar.refresh()).session(DAY) == cal.Session(DAY)  # the library's word stands
    assert (await app.calendar.refresh()).session(DAY) is None  # asked again, and answered
    assert kis.calls == 2


async def test_an_environment_without_chk_holiday_is_not_asked_again(
        db: TestDb, strategy_pool: Pool, clock: ManualClock) -> None:
    await calendar_cmd.refresh(db.admin_url, date(2026, 3, 1), date(2026, 3, 31))
    app = make_app(strategy_pool, clock)
    kis = FakeKis(opened=False, fail=5, error=ServiceNotFound("없는 서비스 코드 입니다", msg_cd="OPSQ0002"))
    app.calendar.kis = kis
    assert (await app.calendar.refresh()).session(DAY) == cal.Session(DAY)  # the installed calendar decides
    assert (await app.calendar.refresh()).session(DAY) == cal.Session(DAY)
    assert kis.calls == 1 and app.calendar.kis is None
