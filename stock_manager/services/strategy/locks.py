"""Per-symbol locks: one holder per symbol, taken in one atomic statement, kept alive by heartbeat.

``acquire`` is a single ``INSERT ... ON CONFLICT (symbol) DO UPDATE ... WHERE expired RETURNING``:
the primary key decides between two workers racing for a free symbol, and the WHERE lets a lock
whose holder stopped renewing it be taken over without a separate cleanup step.  No row back means
somebody else holds it.  TTLs are wall time on the database's clock (every process agrees on it);
the market clock, which a simulator may speed up, says nothing about whether a process is alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loguru import logger
from psycopg import AsyncConnection

from stock_manager.services.strategy import ops
from stock_manager.services.strategy.queries import Q


@dataclass(frozen=True)
class Lock:
    symbol: str
    worker_id: str
    locked_ts: datetime


async def acquire(conn: AsyncConnection[Any], symbol: str, worker_id: str, ttl_s: int) -> Lock | None:
    """The atomic acquire (re-entrant for the holder); None if another worker holds a live lock."""
    row = await (await conn.execute(Q["acquire_lock"],
                                    {"symbol": symbol, "worker_id": worker_id, "ttl_s": ttl_s})).fetchone()
    return Lock(row["symbol"], row["worker_id"], row["locked_ts"]) if row else None


async def release(conn: AsyncConnection[Any], symbol: str, worker_id: str) -> Lock | None:
    row = await (await conn.execute(Q["release_lock"], {"symbol": symbol, "worker_id": worker_id})).fetchone()
    return Lock(row["symbol"], row["worker_id"], row["locked_ts"]) if row else None


async def acquire_lock(conn: AsyncConnection[Any], symbol: str, worker_id: str, ttl_s: int,
                       market_ts: datetime | None) -> bool:
    """Acquire and record it: LockAcquired, or LockRejected (WARN) naming the holder."""
    got = await acquire(conn, symbol, worker_id, ttl_s)
    if got is not None:
        await ops.emit(conn, "LockAcquired", f"lock {symbol} acquired by {worker_id} at {got.locked_ts.isoformat()}",
                       symbol=symbol, worker_id=worker_id, market_ts=market_ts, locked_ts=got.locked_ts,
                       ttl_s=ttl_s)
        return True
    holder = await (await conn.execute(Q["lock_holder"], {"symbol": symbol})).fetchone()
    held_by = holder["worker_id"] if holder else None
    await ops.emit(conn, "LockRejected", f"lock {symbol} refused to {worker_id}: held by {held_by}; trying another",
                   level="WARN", symbol=symbol, worker_id=worker_id, market_ts=market_ts, held_by=held_by,
                   locked_ts=holder["locked_ts"] if holder else None)
    return False


async def release_lock(conn: AsyncConnection[Any], symbol: str, worker_id: str, reason: str,
                       market_ts: datetime | None) -> bool:
    gone = await release(conn, symbol, worker_id)
    if gone is None:
        logger.debug("lock {} was not held by {} ({})", symbol, worker_id, reason)
        return False
    await ops.emit(conn, "LockReleased", f"lock {symbol} released by {worker_id} ({reason})", symbol=symbol,
                   worker_id=worker_id, market_ts=market_ts, locked_ts=gone.locked_ts, reason=reason)
    return True


async def release_all(conn: AsyncConnection[Any], reason: str, market_ts: datetime | None) -> int:
    rows = await (await conn.execute(Q["release_all_locks"])).fetchall()
    for r in rows:
        await ops.emit(conn, "LockReleased", f"lock {r['symbol']} of {r['worker_id']} released ({reason})",
                       symbol=r["symbol"], worker_id=r["worker_id"], market_ts=market_ts,
                       locked_ts=r["locked_ts"], reason=reason)
    return len(rows)
