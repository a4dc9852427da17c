"""``ops.events`` from code that must not wait for the database (the WebSocket reader).

``post`` only queues; one task writes the events in order.  An event that cannot be written is
logged and dropped: the log already tells the same story (``stock_manager.shared.events`` logs every event).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

Emit = Callable[..., Awaitable[None]]


class Reporter:
    def __init__(self, emit: Emit, *, limit: int = 1000) -> None:
        self._emit = emit
        self._queue: deque[tuple[str, str, dict[str, Any]]] = deque(maxlen=limit)
        self._wake = asyncio.Event()

    def post(self, kind: str, message: str = "", **kw: Any) -> None:
        self._queue.append((kind, message, kw))
        self._wake.set()

    async def __call__(self, kind: str, message: str = "", **kw: Any) -> None:
        self.post(kind, message, **kw)

    async def run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            kind, message, kw = self._queue.popleft()
            try:
                await self._emit(kind, message, **kw)
            except Exception as exc:  # an event is a record, not a reason to stop prices
                logger.warning("event {} not recorded: {}", kind, type(exc).__name__)
