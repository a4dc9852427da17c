"""Strategy's trading calendar: read from the database, installed for ``phase_at``, KIS asked daily.

Every decision Strategy takes about time (scan, entries, the liquidation lead, the day's close)
goes through ``phase_at`` and the day's ``Session``; this keeps the calendar they read current.  It
loads the three layers of ``ops.trading_*`` (the library, the operator's overrides, KIS's answers)
at start and every ``reload_s`` of market time, so an override set in the morning applies the same
day.  In paper/live it asks KIS's chk-holiday once per trade date and records the answer, which
then outranks the others (the broker decides whether it takes orders).  A failed KIS call is logged
and retried at the next reload; the calendar stands meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from loguru import logger

from stock_manager.services.strategy.runtime import Runtime
from stock_manager.shared import calendar as cal
from stock_manager.shared.kis.errors import ServiceNotFound
from stock_manager.shared.kis.rest import HolidayDay

# the calendar loaded around today: back far enough for a restart's look at yesterday, ahead
# far enough for the next trading day across the longest holiday (추석 with a weekend)
LOOK_BACK = timedelta(days=14)
LOOK_AHEAD = timedelta(days=60)


class HolidaySource(Protocol):
    async def chk_holiday(self, day: date) -> list[HolidayDay]:
        """KIS's rows from ``day`` on."""
        ...


@dataclass
class CalendarKeeper:
    rt: Runtime
    kis: HolidaySource | None = None  # None in sim (the simulator's calendar is the library's) and on paper
    reload_s: float = 300.0
    asked: set[date] = field(default_factory=set)
    warned: set[date] = field(default_factory=set)

    async def refresh(self) -> cal.TradingCalendar:
        """Ask KIS about today if not yet asked, then load and install the calendar."""
        today = self.rt.today()
        if self.kis is not None and today not in self.asked:
            await self._ask_kis(today)
        async with self.rt.pool.connection() as conn:
            loaded = await cal.load_calendar(conn, today - LOOK_BACK, today + LOOK_AHEAD)
        cal.install(loaded)
        if not loaded.covers(today) and today not in self.warned:
            self.warned.add(today)
            logger.warning("trading calendar: {} is not in ops.trading_days; the weekday rule applies "
                           "(run stock-manager calendar refresh)", today)
        return loaded

    async def _ask_kis(self, today: date) -> None:
        assert self.kis is not None
        try:
            rows = await self.kis.chk_holiday(today)
        except ServiceNotFound:
            # paper KIS has no chk-holiday (OPSQ0002): asking again each reload would only spend budget
            logger.info("chk-holiday is not offered here (paper); the installed trading calendar decides")
            self.kis = None
            return
        except Exception as e:
            logger.warning("chk-holiday for {} failed ({}: {}); the calendar stands until the next try",
                           today, type(e).__name__, e)
            return
        async with self.rt.pool.connection() as conn:
            for r in rows:
                await cal.record_kis_check(conn, r.day, r.opened, {
                    "bzdy_yn": r.business_day, "tr_day_yn": r.trading_day, "opnd_yn": r.opened,
                    "sttl_day_yn": r.settlement_day})
        self.asked.add(today)
        first = next((r for r in rows if r.day == today), None)
        logger.info("chk-holiday {}: opnd_yn {} ({} rows recorded)", today,
                    "?" if first is None else "Y" if first.opened else "N", len(rows))
