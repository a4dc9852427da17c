"""Injectable time.

Every service asks a ``Clock`` for the time instead of calling ``datetime.now``: in ``sim`` mode the
market time is the simulator's (which may run many times faster than the wall clock), and tests
replay a whole trading day in seconds.  ``sleep`` is in *clock* seconds, so a loop that waits "one
minute of market time" waits one real second at speed 60.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

KST = timezone(timedelta(hours=9), name="KST")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    @property
    def speed(self) -> float:
        """Clock seconds per wall second."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of clock time."""
        ...


class SystemClock:
    """The wall clock."""

    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """A clock anchored at ``at`` that runs ``speed`` times faster than the wall clock.

    ``set`` re-anchors it (the simulator's ``POST /sim/clock``; a service re-syncing from it).
    """

    def __init__(self, at: datetime | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self._anchor_mono = time.monotonic()
        self._anchor_at = (at or datetime.now(UTC)).astimezone(UTC)
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._anchor_mono) * self._speed
        return self._anchor_at + timedelta(seconds=elapsed)

    def set(self, at: datetime | None = None, speed: float | None = None) -> None:
        current = self.now()
        if speed is not None:
            if speed <= 0:
                raise ValueError("clock speed must be positive")
            self._speed = float(speed)
        self._anchor_mono = time.monotonic()
        self._anchor_at = (at or current).astimezone(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)


class ManualClock:
    """A clock that moves only when told to: for unit tests of time rules."""

    speed = 1.0

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, seconds: float) -> None:
        self._at += timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        self._at = at

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)


def kst(dt: datetime) -> datetime:
    """``dt`` in Korea time (market hours, trade dates and KIS fields are all KST)."""
    return dt.astimezone(KST)
