"""Relays order/fill notices into ``market.broker_notices``, one small transaction each.

Latency matters more than throughput here: Execution wakes on ``NOTIFY broker_notices`` (fired by
the table's trigger) and turns fills into ``trade.fills``.  Notices are few, so each is inserted
on its own as soon as it arrives, in arrival order; a database outage holds them in memory and
retries, because a fill must not be lost (Execution also reconciles with the broker, so a notice
lost with the process costs latency, not correctness).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime

import psycopg
from loguru import logger
from psycopg.types.json import Jsonb

from stock_manager.shared.clock import Clock, kst
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.kis.ws_frames import ExecutionNotice

from .notices import NoticeRow, UnrelayableNotice, to_row
from .queries import Q

Report = Callable[..., Awaitable[None]]


class NoticeRelay:
    def __init__(self, pool: Pool, clock: Clock, tr_id: str, *, report: Report | None = None) -> None:
        self._pool = pool
        self._clock = clock
        self._tr_id = tr_id
        self._report = report
        self._queue: deque[tuple[ExecutionNotice, datetime]] = deque()
        self._wake = asyncio.Event()
        self.relayed = 0
        self.refused = 0

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def submit(self, notice: ExecutionNotice) -> None:
        """Queue a notice; never blocks the WebSocket reader."""
        self._queue.append((notice, self._clock.now()))
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.1
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            notice, received = self._queue[0]
            try:
                row = to_row(notice, tr_id=self._tr_id, trade_date=kst(received).date(), received_ts=received)
            except UnrelayableNotice as exc:
                self._queue.popleft()
                self.refused += 1
                logger.error("notice for order {} of {} not relayable: {}", notice.odno, notice.symbol, exc)
                if self._report is not None:
                    await self._report("NoticeUnrelayable", str(exc), level="ERROR", symbol=notice.symbol)
                continue
            try:
                await self._insert(row)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                logger.warning("notice relay: database unavailable ({}); retrying in {:.1f}s", type(exc).__name__,
                               backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except psycopg.Error as exc:
                self._queue.popleft()
                self.refused += 1
                logger.error("notice relay: the database refused notice {} {}: {}", row.kind.value, row.odno,
                             str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                continue
            self._queue.popleft()
            self.relayed += 1
            backoff = 0.1
            logger.info("notice {} order {} {} {} {}@{}", row.kind.value, row.odno, row.side, row.symbol, row.qty,
                        row.price)

    async def _insert(self, row: NoticeRow) -> None:
        params = row.params()
        params["fields"] = Jsonb(row.fields)
        async with self._pool.connection() as conn:
            await conn.execute(Q["insert_notice"], params)
