"""The KRX trading calendar: which dates trade, and at what hours.

KRX closes on public and substitute holidays, election days and Dec 31, opens at 10:00 on the
first trading day of the year, and on the CSAT (수능) day opens at 10:00 and closes at 16:30.  A
``Session`` is one day's hours; every other time of the day (the auctions, the after-hours market,
the liquidation lead) is derived from its open and close, so a shifted day moves everything at once.

Where the facts come from, in order of authority:

1. KIS's own holiday query (``chk-holiday``, ``opnd_yn``) in paper/live: the broker decides whether
   it takes orders (Strategy asks once a day in paper/live).
2. The operator's overrides (``ops.trading_day_overrides``, ``stock-manager calendar set``), for
   days the library learns of late (a CSAT date, a newly declared holiday).
3. ``exchange-calendars`` XKRX, written into ``ops.trading_days`` by ``stock-manager migrate`` and
   ``stock-manager calendar refresh``.  The services read the table, never the library, so pandas
   stays out of every service's import path; the simulator, which has no database, builds the same
   calendar from the library once at start.

A date the calendar does not cover falls back to the weekday rule (Mon-Fri, 09:00-15:30), which is
what the system did before the calendar existed; ``TradingCalendar.covers`` says whether a date was
known, so callers can warn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from loguru import logger
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from stock_manager.shared.clock import KST, Clock, kst
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.sql import shared_queries

_Q = shared_queries()

REGULAR_OPEN = time(9, 0)
REGULAR_CLOSE = time(15, 30)
# the opening auction takes orders for 30 minutes before the open, the closing one for 10 before
# the close; 장후 시간외 starts 10 minutes after the close, 시간외 단일가 30 minutes after it, for 2 h
OPEN_AUCTION_LEAD = timedelta(minutes=30)
CLOSING_AUCTION_LEAD = timedelta(minutes=10)
POST_CLOSE_DELAY = timedelta(minutes=10)
AFTER_HOURS_DELAY = timedelta(minutes=30)
AFTER_HOURS_LENGTH = timedelta(hours=2)


class DayKind(StrEnum):
    """The one vocabulary of a day's kind; ``ops.trading_days`` and the overrides CHECK the same."""

    REGULAR = "REGULAR"  # 09:00-15:30
    SHIFTED = "SHIFTED"  # trades, at other hours (first day of the year 10:00; CSAT 10:00-16:30)
    CLOSED = "CLOSED"  # no trading at all


def _at(day: date, t: time, delta: timedelta = timedelta(0)) -> time:
    return (datetime.combine(day, t) + delta).time()


@dataclass(frozen=True)
class Session:
    """One trading day's hours, in KST."""

    day: date
    open: time = REGULAR_OPEN
    close: time = REGULAR_CLOSE

    @property
    def kind(self) -> DayKind:
        return DayKind.REGULAR if (self.open, self.close) == (REGULAR_OPEN, REGULAR_CLOSE) else DayKind.SHIFTED

    @property
    def open_auction_start(self) -> time:
        return _at(self.day, self.open, -OPEN_AUCTION_LEAD)

    @property
    def closing_auction_start(self) -> time:
        return _at(self.day, self.close, -CLOSING_AUCTION_LEAD)

    @property
    def post_close_start(self) -> time:
        return _at(self.day, self.close, POST_CLOSE_DELAY)

    @property
    def after_hours_start(self) -> time:
        return _at(self.day, self.close, AFTER_HOURS_DELAY)

    @property
    def after_hours_end(self) -> time:
        return _at(self.day, self.close, AFTER_HOURS_DELAY + AFTER_HOURS_LENGTH)

    def at(self, t: time) -> datetime:
        """``t`` on this day, KST."""
        return datetime.combine(self.day, t, KST)

    @property
    def open_at(self) -> datetime:
        return self.at(self.open)

    @property
    def close_at(self) -> datetime:
        return self.at(self.close)


@dataclass(frozen=True)
class DayEntry:
    """A calendar row: a kind and, unless closed, its hours."""

    kind: DayKind
    open: time | None = None
    close: time | None = None

    def __post_init__(self) -> None:
        if (self.kind is DayKind.CLOSED) != (self.open is None and self.close is None):
            raise ValueError("a closed day has no hours and a trading day has both")
        if self.open is not None and self.close is not None and not self.open < self.close:
            raise ValueError("the open must come before the close")


@dataclass(frozen=True)
class TradingCalendar:
    """Known days (library rows with the operator's overrides on top); the weekday rule elsewhere."""

    days: Mapping[date, DayEntry] = field(default_factory=dict)

    def covers(self, day: date) -> bool:
        return day in self.days

    def session(self, day: date) -> Session | None:
        """The day's hours, or None when the market is closed all day."""
        entry = self.days.get(day)
        if entry is None:
            return Session(day) if day.weekday() < 5 else None
        if entry.kind is DayKind.CLOSED:
            return None
        if entry.open is None or entry.close is None:  # DayEntry refuses this; for the type checker
            return None
        return Session(day, entry.open, entry.close)

    def session_at(self, at: datetime) -> Session | None:
        return self.session(kst(at).date())

    def is_trading_day(self, day: date) -> bool:
        return self.session(day) is not None

    def next_trading_day(self, day: date, *, limit: int = 30) -> date:
        """The first trading day strictly after ``day``."""
        d = day
        for _ in range(limit):
            d += timedelta(days=1)
            if self.is_trading_day(d):
                return d
        raise ValueError(f"no trading day within {limit} days after {day}")

    def with_entries(self, entries: Mapping[date, DayEntry]) -> TradingCalendar:
        """This calendar with ``entries`` on top (the operator's overrides, KIS's answer)."""
        return TradingCalendar({**self.days, **entries})


WEEKDAYS = TradingCalendar()

_installed: TradingCalendar = WEEKDAYS


def install(calendar: TradingCalendar) -> None:
    """Make ``calendar`` the one ``market_rules.phase_at`` uses when not handed one.

    Each process installs its calendar once at start (and again when it refreshes it), so the many
    callers of ``phase_at`` need no plumbing; pure tests pass a calendar explicitly instead.
    """
    global _installed
    _installed = calendar


def installed() -> TradingCalendar:
    return _installed


def layered(library: Mapping[date, DayEntry], overrides: Mapping[date, DayEntry],
            kis: Mapping[date, bool]) -> TradingCalendar:
    """The library's days, the operator's on top, and KIS's open/closed answer over both.

    KIS only says whether the day trades (``opnd_yn``), not its hours: a day KIS calls closed is
    closed whatever the others say; a day KIS calls open keeps the hours the others give it, or the
    regular hours if they had it closed.
    """
    days = {**library, **overrides}
    for day, opened in kis.items():
        if not opened:
            days[day] = DayEntry(DayKind.CLOSED)
        elif days.get(day, DayEntry(DayKind.REGULAR, REGULAR_OPEN, REGULAR_CLOSE)).kind is DayKind.CLOSED:
            days[day] = DayEntry(DayKind.REGULAR, REGULAR_OPEN, REGULAR_CLOSE)
    return TradingCalendar(days)


def entries_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[date, DayEntry]:
    """Rows of ``trading_calendar`` (trade_date, kind, open_time, close_time) as entries."""
    return {
        r["trade_date"]: DayEntry(DayKind(r["kind"]), r["open_time"], r["close_time"]) for r in rows
    }


# Days KRX announced that the installed exchange-calendars does not know (4.13.2, 2026-03): each
# with its reason and source, applied on top of the library until a release has it.  Kept short on
# purpose: a day found late in operation goes to the overrides table, not here.
LIBRARY_CORRECTIONS: Mapping[date, tuple[DayEntry, str]] = {
    date(2026, 6, 3): (DayEntry(DayKind.CLOSED),
                       "제9회 전국동시지방선거 (election day, a public holiday; KRX's 2026 holiday list)"),
}


def xkrx_entries(start: date, end: date) -> dict[date, DayEntry]:
    """Every weekday from ``start`` to ``end`` per exchange-calendars XKRX.

    Imported here only: pandas is loaded by the command that refreshes the table and by the
    simulator at start, never by a service's hot path.  Weekends are left out (the weekday rule
    already closes them), so the table holds one row per weekday.  ``LIBRARY_CORRECTIONS`` go on top.
    """
    import exchange_calendars as xcals

    cal = xcals.get_calendar("XKRX", start=start.isoformat(), end=end.isoformat())
    sched = cal.schedule
    out: dict[date, DayEntry] = {}
    opens = {ts.date(): (o.tz_convert("Asia/Seoul").time(), c.tz_convert("Asia/Seoul").time())
             for ts, o, c in zip(sched.index, sched["open"], sched["close"], strict=True)}
    d = start
    while d <= end:
        if d.weekday() < 5:
            if d in opens:
                o, c = opens[d]
                kind = DayKind.REGULAR if (o, c) == (REGULAR_OPEN, REGULAR_CLOSE) else DayKind.SHIFTED
                out[d] = DayEntry(kind, o, c)
            else:
                out[d] = DayEntry(DayKind.CLOSED)
        d += timedelta(days=1)
    out.update({day: entry for day, (entry, _) in LIBRARY_CORRECTIONS.items() if start <= day <= end})
    return out


def xkrx_calendar(start: date, end: date) -> TradingCalendar:
    return TradingCalendar(xkrx_entries(start, end))


def default_range(today: date) -> tuple[date, date]:
    """Last year to next year: enough for reports on last year and a year of trading ahead."""
    return date(today.year - 1, 1, 1), date(today.year + 1, 12, 31)


# --- the tables (ops.trading_days, ops.trading_day_overrides, ops.kis_holiday_checks) ----------

async def refresh_library(conn: AsyncConnection[Any], start: date, end: date) -> int:
    """Write XKRX's weekdays from ``start`` to ``end`` into ``ops.trading_days``; rows changed."""
    changed = 0
    async with conn.cursor() as cur:
        for day, e in sorted(xkrx_entries(start, end).items()):
            await cur.execute(_Q["upsert_trading_day"], {
                "trade_date": day, "kind": e.kind.value, "open_time": e.open, "close_time": e.close,
                "source": f"correction: {LIBRARY_CORRECTIONS[day][1]}" if day in LIBRARY_CORRECTIONS
                else "exchange-calendars XKRX"})
            changed += cur.rowcount
    return changed


async def set_override(conn: AsyncConnection[Any], day: date, entry: DayEntry | None, *,
                       reason: str = "", set_by: str = "operator") -> None:
    """The operator's word on ``day``; ``None`` removes it (the library's row applies again)."""
    if entry is None:
        await conn.execute(_Q["delete_override"], {"trade_date": day})
        return
    await conn.execute(_Q["set_override"], {
        "trade_date": day, "kind": entry.kind.value, "open_time": entry.open, "close_time": entry.close,
        "reason": reason, "set_by": set_by})


async def record_kis_check(conn: AsyncConnection[Any], day: date, opened: bool, raw: Mapping[str, Any]) -> None:
    await conn.execute(_Q["upsert_kis_check"], {
        "trade_date": day, "opnd_yn": "Y" if opened else "N", "raw": Jsonb(dict(raw))})


async def load_calendar(conn: AsyncConnection[Any], start: date, end: date) -> TradingCalendar:
    """The three layers from the database for ``start``..``end``, as one calendar."""
    rng = {"start": start, "end": end}
    lib = entries_from_rows(await (await conn.execute(_Q["library_days"], rng)).fetchall())
    ovr = entries_from_rows(await (await conn.execute(_Q["override_days"], rng)).fetchall())
    kis = {r["trade_date"]: r["opnd_yn"] == "Y"
           for r in await (await conn.execute(_Q["kis_checks"], rng)).fetchall()}
    return layered(lib, ovr, kis)


async def keep_installed(pool: Pool, clock: Clock, stopping: asyncio.Event, every_s: float = 300.0) -> None:
    """Keep the calendar ``phase_at`` answers from current in this process, for every service.

    Loaded from the database (the library, the operator's overrides and KIS's answers as Strategy
    recorded them) around the clock's today, then reloaded every ``every_s`` wall seconds, so an
    override set during the day reaches every process.  A failed load leaves the last calendar.
    """
    while not stopping.is_set():
        today = kst(clock.now()).date()
        try:
            async with pool.connection() as conn:
                install(await load_calendar(conn, today - timedelta(days=14), today + timedelta(days=60)))
        except Exception as e:
            logger.warning("trading calendar not reloaded ({}: {}); the last one stands", type(e).__name__, e)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), every_s)
