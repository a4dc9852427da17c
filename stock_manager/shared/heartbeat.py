"""``ops.heartbeats``: one row per running process, refreshed every few seconds.

Monitoring, the supervisor's status screen and docker healthchecks read it; a row whose beat is
older than a few intervals means the process is gone or stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from psycopg.types.json import Jsonb

from stock_manager.shared.clock import Clock
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.sql import shared_queries

_Q = shared_queries()


class Heartbeat:
    def __init__(
        self,
        pool: Pool,
        service: str,
        instance_id: str,
        clock: Clock,
        *,
        interval_s: float = 5.0,
        info: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._pool = pool
        self.service = service
        self.instance_id = instance_id
        self._clock = clock
        self._interval = interval_s
        self._info = info or dict
        self._started = datetime.now(UTC)
        self.status = "STARTING"
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                _Q["upsert_heartbeat"],
                {
                    "service": self.service,
                    "instance_id": self.instance_id,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "status": self.status,
                    "started_ts": self._started,
                    "market_ts": self._clock.now(),
                    "info": Jsonb(self._info()),
                },
            )

    async def start(self) -> None:
        await self.beat()
        self._task = asyncio.create_task(self._run(), name="heartbeat")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.beat()
            except Exception as e:  # a missed beat must not kill the service; the next one retries
                logger.warning("heartbeat failed: {}", type(e).__name__)

    async def stop(self, status: str = "STOPPED") -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.status = status
        with contextlib.suppress(Exception):
            await self.beat()
