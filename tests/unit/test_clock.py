from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from stock_manager.shared.clock import ManualClock, ScaledClock, SystemClock
from stock_manager.shared.clock_sync import parse_sim_clock


async def test_scaled_clock_runs_fast_and_sleeps_in_clock_seconds() -> None:
    start = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    c = ScaledClock(start, speed=600)
    t0 = time.monotonic()
    await c.sleep(60)  # one market minute at 600x is 0.1 s
    assert time.monotonic() - t0 < 1.0
    assert c.now() - start >= timedelta(seconds=59)
    c.set(at=start, speed=1)
    assert abs((c.now() - start).total_seconds()) < 1 and c.speed == 1


async def test_manual_and_system_clocks() -> None:
    m = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    await m.sleep(90)
    assert m.now() == datetime(2026, 1, 1, 0, 1, 30, tzinfo=UTC)
    s = SystemClock()
    assert s.now().tzinfo is not None
    await asyncio.wait_for(s.sleep(0), 1)


def test_sim_clock_answer_parses() -> None:
    at, speed = parse_sim_clock({"now": "2026-11-23T09:30:00+09:00", "speed": 60})
    assert at == datetime(2026, 11, 23, 0, 30, tzinfo=UTC) and speed == 60
