"""The async connection pool, opened explicitly (never on import) and closed by its owner."""

from __future__ import annotations

from psycopg import AsyncConnection
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
