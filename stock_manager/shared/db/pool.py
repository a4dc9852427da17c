"""The async connection pool, opened explicitly (never on import) and closed by its owner."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]


async def open_pool(conninfo: str, *, min_size: int = 1, max_size: int = 8, name: str = "sm") -> Pool:
    """Open a pool whose connections return rows as dicts; waits until the first connection works."""
    pool: Pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        connection_class=AsyncConnection[DictRow],
        kwargs={"row_factory": dict_row, "autocommit": False},
        # no per-checkout health check: it costs a round trip on every use; a broken connection
        # fails its statement and the pool replaces it
    )
    await pool.open(wait=True, timeout=30)
    return pool


async def connect(conninfo: str, *, autocommit: bool = True) -> AsyncConnection[DictRow]:
    """A single connection outside any pool (LISTEN, migrations, one-shot commands)."""
    return await AsyncConnection.connect(conninfo, autocommit=autocommit, row_factory=dict_row)


def describe(conninfo: str) -> str:
    """``user@host:port/dbname`` for messages: enough to see which server is meant, never the password."""
    p = conninfo_to_dict(conninfo)
    user = f"{p['user']}@" if p.get("user") else ""
    return f"{user}{p.get('host') or 'localhost'}:{p.get('port') or 5432}/{p.get('dbname') or ''}"


async def wait_until_reachable(
    conninfo: str,
    stopping: asyncio.Event,
    say: Callable[[str], None],
    *,
    retry_s: float = 2.0,
    max_retry_s: float = 10.0,
) -> bool:
    """Block until one connection succeeds; False if told to stop first.

    A service started before its database (compose, a reboot) should wait for it rather than die
    and be restarted, but the operator must learn at once what is wrong: the first failure says one
    line naming the server and what to check, the retries stay quiet, and recovery says so.
    Opening the pool directly would stay silent for its 30 s timeout while psycopg_pool logs every
    failed attempt.
    """
    delay, told = retry_s, False
    while not stopping.is_set():
        try:
            conn = await AsyncConnection.connect(conninfo, connect_timeout=2)
        except psycopg.OperationalError as e:
            if not told:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                say(f"cannot reach the database at {describe(conninfo)} ({first}); check that PostgreSQL "
                    f"is running there and that DATABASE_URL names it; retrying until it answers")
                told = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(delay * 1.5, max_retry_s)
            continue
        await conn.close()
        if told:
            say(f"the database at {describe(conninfo)} answers now")
        return True
    return False
