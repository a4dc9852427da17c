"""Per-symbol locks on the real database: SC-003, SC-004, SC-010 and the TTL takeover."""

from __future__ import annotations

import asyncio
from typing import Any

from stock_manager.services.strategy import locks
from stock_manager.shared.db.pool import Pool, connect
from tests.strategy.support import T0, events
from tests.support.pg import TestDb


async def test_sc003_acquire_a_free_symbol(strategy_pool: Pool, admin_pool: Pool,
                                           logs: list[dict[str, Any]]) -> None:
    async with strategy_pool.connection() as conn:
        assert await locks.acquire_lock(conn, "005930", "wA", 30, T0) is True
    async with admin_pool.connection() as conn:
        row = await (await conn.execute("SELECT * FROM trade.symbol_locks WHERE symbol = '005930'")).fetchone()
        assert row is not None and row["worker_id"] == "wA" and row["ttl_s"] == 30
        assert row["locked_ts"] is not None and row["heartbeat_ts"] is not None and row["expires_ts"] > row["locked_ts"]
        (ev,) = await events(conn, "LockAcquired")
        assert ev["symbol"] == "005930" and ev["worker_id"] == "wA" and ev["data"]["locked_ts"]
    assert any(r["level"] == "INFO" and "lock 005930 acquired by wA" in r["message"] for r in logs)


async def test_sc004_a_symbol_held_by_another_worker_is_refused(strategy_pool: Pool, admin_pool: Pool,
                                                                logs: list[dict[str, Any]]) -> None:
    async with strategy_pool.connection() as conn:
        assert await locks.acquire_lock(conn, "005930", "wA", 30, T0)
    async with strategy_pool.connection() as conn:
        assert await locks.acquire_lock(conn, "005930", "wB", 30, T0) is False
    async with admin_pool.connection() as conn:
        rows = await (await conn.execute("SELECT worker_id FROM trade.symbol_locks")).fetchall()
        assert [r["worker_id"] for r in rows] == ["wA"]
        (ev,) = await events(conn, "LockRejected")
        assert ev["level"] == "WARN" and ev["worker_id"] == "wB" and ev["data"]["held_by"] == "wA"
    assert any(r["level"] == "WARNING" and "held by wA" in r["message"] and "trying another" in r["message"]
               for r in logs)


async def test_the_holder_may_reacquire_and_only_the_holder_releases(strategy_pool: Pool) -> None:
    async with strategy_pool.connection() as conn:
        assert await locks.acquire(conn, "005930", "wA", 30)
        first = await (await conn.execute("SELECT locked_ts FROM trade.symbol_locks")).fetchone()
        assert await locks.acquire(conn, "005930", "wA", 30)  # re-entrant: a renewal, same locked_ts
        again = await (await conn.execute("SELECT locked_ts FROM trade.symbol_locks")).fetchone()
        assert first == again
        assert await locks.release(conn, "005930", "wB") is None
        assert await locks.release(conn, "005930", "wA") is not None
        assert await locks.acquire(conn, "005930", "wB", 30)


async def test_an_expired_lock_is_taken_over_in_the_same_statement(strategy_pool: Pool, admin_pool: Pool) -> None:
    async with strategy_pool.connection() as conn:
        assert await locks.acquire(conn, "005930", "wA", 30)
    async with admin_pool.connection() as conn:
        await conn.execute("UPDATE trade.symbol_locks SET expires_ts = now() - interval '1 second'")
    async with strategy_pool.connection() as conn:
        got = await locks.acquire(conn, "005930", "wB", 30)
    assert got is not None and got.worker_id == "wB"


async def test_sc010_eight_connections_racing_for_one_symbol_one_wins(db: TestDb, admin_pool: Pool) -> None:
    """Eight real connections fire the acquire at once, many rounds: never two holders."""
    conns = [await connect(db.url("strategy"), autocommit=True) for _ in range(8)]
    try:
        for rnd in range(20):
            sym = f"{rnd:06d}"
            barrier = asyncio.Barrier(8)

            async def go(i: int, sym: str = sym, barrier: asyncio.Barrier = barrier) -> bool:
                await barrier.wait()
                return await locks.acquire(conns[i], sym, f"w{i}", 30) is not None

            won = await asyncio.gather(*(go(i) for i in range(8)))
            assert sum(won) == 1, (rnd, won)
        async with admin_pool.connection() as conn:
            n = await (await conn.execute("SELECT count(*) AS n, count(DISTINCT symbol) AS d"
                                          " FROM trade.symbol_locks")).fetchone()
            assert n is not None and n["n"] == n["d"] == 20
    finally:
        for c in conns:
            await c.close()


async def test_sc010_two_workers_one_wins_the_other_is_refused_and_recorded(db: TestDb, admin_pool: Pool) -> None:
    a = await connect(db.url("strategy"), autocommit=False)
    b = await connect(db.url("strategy"), autocommit=False)
    try:
        async def go(conn: Any, w: str) -> bool:
            ok = await locks.acquire_lock(conn, "035720", w, 30, T0)
            await conn.commit()
            return ok

        ra, rb = await asyncio.gather(go(a, "wA"), go(b, "wB"))
        assert ra != rb
        winner, loser = ("wA", "wB") if ra else ("wB", "wA")
        async with admin_pool.connection() as conn:
            rows = await (await conn.execute("SELECT worker_id FROM trade.symbol_locks WHERE symbol = '035720'"
                                             )).fetchall()
            assert [r["worker_id"] for r in rows] == [winner]
            assert [e["worker_id"] for e in await events(conn, "LockAcquired")] == [winner]
            assert [e["worker_id"] for e in await events(conn, "LockRejected")] == [loser]
    finally:
        await a.close()
        await b.close()
