"""LISTEN on a dedicated connection, with reconnect.

NOTIFY only wakes; it never carries work.  A consumer waits on a ``Waker`` with a timeout and polls
its table either way, so a notification lost while the connection was down costs latency, not
correctness.  After every (re)connect the waker fires once, because anything could have happened
while nobody was listening.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import psycopg
from loguru import logger
from psycopg import sql

from stock_manager.shared.db.pool import connect


class Waker:
    """A level-triggered wake-up: ``set`` any number of times, ``wait`` returns once per burst."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, within: float) -> bool:
        """True if woken, False on timeout; clears the flag either way."""
        try:
            await asyncio.wait_for(self._event.wait(), within)
            return True
        except TimeoutError:
            return False
        finally:
            self._event.clear()


class Listener:
    """Runs LISTEN for ``channels`` and sets the waker registered for each channel."""

    def __init__(self, conninfo: str, *, min_backoff: float = 0.5, max_backoff: float = 15.0) -> None:
        self._conninfo = conninfo
        self._wakers: dict[str, list[Waker]] = {}
        self._task: asyncio.Task[None] | None = None
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self.connected = asyncio.Event()

    def waker(self, channel: str) -> Waker:
        w = Waker()
        self._wakers.setdefault(channel, []).append(w)
        return w

    def _wake(self, channels: Iterable[str]) -> None:
        for ch in channels:
            for w in self._wakers.get(ch, ()):
                w.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = self._min_backoff
        while True:
            try:
                async with await connect(self._conninfo, autocommit=True) as conn:
                    for ch in self._wakers:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(ch)))
                    self.connected.set()
                    backoff = self._min_backoff
                    self._wake(self._wakers)
                    async for note in conn.notifies():
                        self._wake((note.channel,))
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as e:
                self.connected.clear()
                logger.warning("LISTEN connection lost ({}); reconnecting in {:.1f}s", type(e).__name__, backoff)
                self._wake(self._wakers)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
