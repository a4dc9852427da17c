"""``stock-manager calendar``: the operator's hand on the trading calendar.

``refresh`` writes exchange-calendars' XKRX days into ``ops.trading_days`` (``migrate`` and ``up``
do it too, for last year to next year); ``set`` records the operator's word on one day in
``ops.trading_day_overrides`` (the CSAT day's 10:00-16:30, a holiday declared after the library's
release); ``show`` lists the days that are not regular.  Services pick changes up at their next
calendar reload (Strategy: every few minutes), so a ``set`` on the morning of the day still counts.
"""

from __future__ import annotations

import argparse
import os
import socket
from datetime import UTC, date, datetime, time

from stock_manager.shared import calendar as cal
from stock_manager.shared.db.pool import connect


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="calendar_command", required=True)
    r = sub.add_parser("refresh", help="write exchange-calendars XKRX into ops.trading_days")
    r.add_argument("--from", dest="start", type=date.fromisoformat, default=None, help="default: Jan 1 last year")
    r.add_argument("--to", dest="end", type=date.fromisoformat, default=None, help="default: Dec 31 next year")
    s = sub.add_parser("set", help="override one day: --open/--close, --closed, or --clear")
    s.add_argument("day", type=date.fromisoformat)
    s.add_argument("--open", type=time.fromisoformat, default=None, help="HH:MM (default 09:00)")
    s.add_argument("--close", type=time.fromisoformat, default=None, help="HH:MM (default 15:30)")
    s.add_argument("--closed", action="store_true", help="no trading that day")
    s.add_argument("--clear", action="store_true", help="remove the override (the library's day applies)")
    s.add_argument("--reason", default="")
    sh = sub.add_parser("show", help="the days that are not regular (closed or shifted hours)")
    sh.add_argument("--from", dest="start", type=date.fromisoformat, default=None)
    sh.add_argument("--to", dest="end", type=date.fromisoformat, default=None)


def override_entry(args: argparse.Namespace) -> cal.DayEntry | None:
    """The entry ``set``'s options describe; None for ``--clear``."""
    if args.clear:
        return None
    if args.closed:
        if args.open or args.close:
            raise ValueError("--closed takes no hours")
        return cal.DayEntry(cal.DayKind.CLOSED)
    o, c = args.open or cal.REGULAR_OPEN, args.close or cal.REGULAR_CLOSE
    kind = cal.DayKind.REGULAR if (o, c) == (cal.REGULAR_OPEN, cal.REGULAR_CLOSE) else cal.DayKind.SHIFTED
    return cal.DayEntry(kind, o, c)


async def refresh(url: str, start: date | None = None, end: date | None = None) -> int:
    d0, d1 = cal.default_range(datetime.now(UTC).date())
    async with await connect(url, autocommit=False) as conn:
        n = await cal.refresh_library(conn, start or d0, end or d1)
        await conn.commit()
    return n


async def run(args: argparse.Namespace, url: str) -> int:
    if args.calendar_command == "refresh":
        n = await refresh(url, args.start, args.end)
        print(f"trading calendar: {n} day(s) written from exchange-calendars XKRX")
        return 0
    if args.calendar_command == "set":
        try:
            entry = override_entry(args)
        except ValueError as e:
            print(f"stock-manager: {e}")
            return 2
        who = f"cli:{os.environ.get('USER', 'operator')}@{socket.gethostname()}"
        async with await connect(url, autocommit=False) as conn:
            await cal.set_override(conn, args.day, entry, reason=args.reason, set_by=who)
            await conn.commit()
        print(f"{args.day}: " + ("override cleared" if entry is None else _describe(entry)))
        return 0
    d0, d1 = cal.default_range(datetime.now(UTC).date())
    start, end = args.start or d0, args.end or d1
    async with await connect(url) as conn:
        known = await cal.load_calendar(conn, start, end)
    for day in sorted(d for d in known.days if start <= d <= end):
        entry = known.days[day]
        if entry.kind is not cal.DayKind.REGULAR:
            print(f"{day} {day.strftime('%a')} {_describe(entry)}")
    return 0


def _describe(entry: cal.DayEntry) -> str:
    if entry.kind is cal.DayKind.CLOSED:
        return "CLOSED"
    assert entry.open is not None
    assert entry.close is not None
    return f"{entry.kind} {entry.open:%H:%M}-{entry.close:%H:%M}"
