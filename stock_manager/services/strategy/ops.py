"""Events and logs of the Strategy service.

Every event goes to ``ops.events`` in the caller's transaction (so a state change and the record of
it commit together) and to the log at the event's level (seed 004 section 6: INFO for starts,
transitions, orders, fills and PnL; WARN for lock contention, risk violations, unfilled and
rejected orders; ERROR for timeouts, worker failures and fatal errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from stock_manager.shared import events

SERVICE = "strategy"


def jsonable(v: Any) -> Any:
    """Event data and jsonb columns hold text for money (exact) and ISO text for times."""
    if isinstance(v, Decimal | UUID):
        return str(v)
    if isinstance(v, datetime | date | time):
        return v.isoformat()
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [jsonable(x) for x in v]
    return v


async def emit(conn: AsyncConnection[Any], kind: str, message: str, *, level: str = "INFO",
               symbol: str | None = None, worker_id: str | None = None, intent_id: UUID | str | None = None,
               market_ts: datetime | None = None, **data: Any) -> int:
    return await events.emit(conn, SERVICE, kind, message, level=level, symbol=symbol, worker_id=worker_id,
                             intent_id=intent_id, market_ts=market_ts, **jsonable(data))
