"""``ops.events``: the append-only record of what each service did and why.

Every event is also logged at its level, so the log and the table tell the same story.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from loguru import logger
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from stock_manager.shared.sql import shared_queries

_Q = shared_queries()
_LOG_LEVEL = {"DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL"}


async def emit(
    conn: AsyncConnection[Any],
    service: str,
    kind: str,
    message: str = "",
    *,
    level: str = "INFO",
    symbol: str | None = None,
    intent_id: UUID | str | None = None,
    worker_id: str | None = None,
    market_ts: datetime | None = None,
    **data: Any,
) -> int:
    """Insert one event in the caller's transaction; returns its id."""
    cur = await conn.execute(
        _Q["insert_event"],
        {
            "service": service,
            "level": level,
            "kind": kind,
            "message": message,
            "symbol": symbol,
            "intent_id": str(intent_id) if intent_id is not None else None,
            "worker_id": worker_id,
            "market_ts": market_ts,
            "data": Jsonb(data),
        },
    )
    row = await cur.fetchone()
    logger.bind(kind=kind).log(_LOG_LEVEL[level], "[{}] {}", kind, message or kind)
    assert row is not None
    return int(row["event_id"] if isinstance(row, dict) else row[0])

