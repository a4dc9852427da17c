"""In ``sim`` mode every service runs on the simulator's clock (``GET /sim/clock``).

``SimClock`` is a ``ScaledClock`` re-anchored from the simulator every few seconds, so a service
sees the same market time as the simulator even when the clock is set or sped up mid-run.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import httpx
from loguru import logger

from stock_manager.shared.clock import ScaledClock


def parse_sim_clock(body: dict[str, object]) -> tuple[datetime, float]:
    raw = body.get("now") or body.get("at") or body.get("time")
    if not isinstance(raw, str):
        raise ValueError("simulator clock answer has no time")
    speed = body.get("speed", 1.0)
    return datetime.fromisoformat(raw), float(speed) if isinstance(speed, int | float | str) else 1.0


class SimClock(ScaledClock):
    def __init__(self, base_url: str, *, resync_s: float = 2.0) -> None:
        super().__init__()
        self._url = base_url.rstrip("/") + "/sim/clock"
        self._resync_s = resync_s
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()

    async def sync_once(self, client: httpx.AsyncClient) -> None:
        resp = await client.get(self._url, timeout=2.0)
        resp.raise_for_status()
        at, speed = parse_sim_clock(resp.json())
        self.set(at=at, speed=speed)
        self.synced.set()

    async def start(self, wait_s: float = 10.0) -> None:
        """Begin syncing; waits up to ``wait_s`` for the first answer (the simulator may be starting)."""
        self._task = asyncio.create_task(self._run(), name="sim-clock")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.synced.wait(), wait_s)
        if not self.synced.is_set():
            logger.warning("simulator clock not reachable yet; using the wall clock until it is")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async with httpx.AsyncClient() as client:
            while True:
                try:
                    await self.sync_once(client)
                    delay = self._resync_s
                except (httpx.HTTPError, ValueError) as e:
                    logger.debug("sim clock sync failed: {}", type(e).__name__)
                    delay = 0.5 if not self.synced.is_set() else self._resync_s
                await asyncio.sleep(delay)
