"""A day's report put together: read, then drawn into a folder."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from stock_manager.report import charts, page
from stock_manager.report.data import MAX_CHARTS, fingerprint, latest_day, load_day
from stock_manager.report.model import Day, equity_curve
from stock_manager.shared.clock import Clock

__all__ = ["draw", "fingerprint", "generate", "latest_day", "read", "write_report"]

EQUITY_FILE = "equity.png"


def write_report(day: Day, out: Path) -> Path:
    """Draw ``day`` into ``out`` (index.html and its PNGs); returns the page.  CPU only, no I/O but files."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("trip-*.png"):  # an earlier render of more trips
        old.unlink()
    charts.equity_png(equity_curve(day.trips, day.first_fill_ts), out / EQUITY_FILE, until=day.last_fill_ts)
    drawn: list[page.Chart] = []
    for n, trip in enumerate(day.trips[: day.charted], 1):
        name = f"trip-{n:02d}.png"
        charts.trip_png(n, trip, day.candles.get(trip.trip_id, ()), out / name)
        drawn.append(page.Chart(n, trip, name))
    index = out / "index.html"
    index.write_text(page.render(day, drawn, equity_file=EQUITY_FILE, cjk_font=charts.cjk_font()), encoding="utf-8")
    return index


async def read(conn: AsyncConnection[Any], d: date, clock: Clock, *, max_charts: int = MAX_CHARTS) -> Day:
    """The day as the report shows it, stamped with ``clock``'s time (the wall clock's, in use)."""
    return replace(await load_day(conn, d, max_charts=max_charts), generated_ts=clock.now())


async def draw(day: Day, out: Path) -> Path:
    """``write_report`` in a thread: a day's charts take a second or two of CPU, which the dashboard's
    event loop must not spend."""
    return await asyncio.to_thread(write_report, day, out)


async def generate(conn: AsyncConnection[Any], d: date, out: Path, clock: Clock, *,
                   max_charts: int = MAX_CHARTS) -> Path:
    """Read ``d`` through ``conn`` (sm_readonly's, with no transaction open) and write its report into ``out``."""
    return await draw(await read(conn, d, clock, max_charts=max_charts), out)
