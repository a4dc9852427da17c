"""The shared KIS token and REST budget in PostgreSQL, across connections and real processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import psycopg
from pydantic import SecretStr

from stock_manager.shared.db.pool import open_pool
from stock_manager.shared.kis.pg_ports import PgRateLimiter, PgTokenStore
from stock_manager.shared.kis.ports import CachedToken, Priority
from stock_manager.shared.locks import TOKEN_LOCK_CLASS
from tests.support.pg import TestDb

KEY = "kis-real-0123456789abcdef"
SECRET = SecretStr("app-secret-for-tests")


async def test_the_token_is_shared_and_encrypted_at_rest(db: TestDb) -> None:
    pool = await open_pool(db.url("execution"), max_size=2)
    try:
        store = PgTokenStore(pool, db.url("execution"), SECRET)
        assert await store.get_cached(KEY) is None
        exp = datetime.now(UTC) + timedelta(hours=24)
        await store.save(CachedToken(KEY, SecretStr("eyJ.the-real-token.sig"), exp, datetime.now(UTC)))
        other_pool = await open_pool(db.url("pricesync"), max_size=1)
        try:
            got = await PgTokenStore(other_pool, db.url("pricesync"), SECRET).get_cached(KEY)
            assert got is not None and got.token.get_secret_value() == "eyJ.the-real-token.sig"
            assert await PgTokenStore(other_pool, db.url("pricesync"), SecretStr("rotated")).get_cached(KEY) is None
        finally:
            await other_pool.close()
    finally:
        await pool.close()
    with psycopg.connect(db.admin_url) as conn:
        blob = conn.execute("SELECT token_cipher FROM ops.broker_tokens").fetchone()[0]  # type: ignore[index]
    assert b"the-real-token" not in bytes(blob)


async def test_only_one_process_at_a_time_may_issue_and_attempts_are_visible(db: TestDb) -> None:
    pool = await open_pool(db.url("execution"), max_size=2)
    try:
        a = PgTokenStore(pool, db.url("execution"), SECRET)
        b = PgTokenStore(pool, db.url("strategy"), SECRET)
        order: list[str] = []
        at = datetime.now(UTC)

        async def first() -> None:
            async with a.issue_guard(KEY) as g:
                order.append("a-in")
                await g.record_attempt(at)
                await asyncio.sleep(0.3)
                order.append("a-out")

        async def second() -> datetime | None:
            await asyncio.sleep(0.05)
            async with b.issue_guard(KEY) as g:
                order.append("b-in")
                return g.last_attempt_at

        _, seen = await asyncio.gather(first(), second())
        assert order == ["a-in", "a-out", "b-in"]
        assert seen is not None and abs((seen - at).total_seconds()) < 0.001
    finally:
        await pool.close()


async def test_the_issue_lock_dies_with_its_process(db: TestDb) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import psycopg, time
            c = psycopg.connect({db.url('execution')!r}, autocommit=True)
            c.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", ({TOKEN_LOCK_CLASS}, {KEY!r}))
            print('locked', flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    pool = await open_pool(db.url("strategy"), max_size=1)
    try:
        store = PgTokenStore(pool, db.url("strategy"), SECRET)

        async def enter() -> None:
            async with store.issue_guard(KEY):
                pass

        waiter = asyncio.create_task(enter())
        await asyncio.sleep(0.3)
        assert not waiter.done()
        holder.kill()
        await asyncio.wait_for(waiter, 10)
    finally:
        holder.kill()
        await pool.close()


_WORKER = textwrap.dedent("""
    import asyncio, json, sys, time
    from stock_manager.shared.db.pool import open_pool
    from stock_manager.shared.kis.pg_ports import PgRateLimiter
    from stock_manager.shared.kis.ports import Priority

    async def main(url, limit, seconds, priority):
        pool = await open_pool(url, max_size=2)
        lim = PgRateLimiter(pool, "kis-real-ratetest00000001", limit)
        stamps = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await lim.acquire(Priority[priority])
            stamps.append(lim.last_slot)  # the slot on the database's clock, free of client jitter
        await pool.close()
        print(json.dumps(stamps))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
""")


def _max_in_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while t - stamps[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_three_processes_share_one_budget(db: TestDb) -> None:
    limit, seconds = 10, 3.0
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, db.url(role), str(limit), str(seconds), "ORDER"],
                         stdout=subprocess.PIPE, text=True)
        for role in ("pricesync", "strategy", "execution")
    ]
    stamps: list[float] = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        stamps.extend(json.loads(out))
    assert _max_in_window(stamps, 1.0) <= limit
    span = max(stamps) - min(stamps)
    assert len(stamps) / span >= 0.9 * limit, f"only {len(stamps) / span:.1f}/s of {limit}/s used"


async def test_polling_leaves_headroom_for_orders(db: TestDb) -> None:
    pool = await open_pool(db.url("pricesync"), max_size=6)
    try:
        lim = PgRateLimiter(pool, "kis-real-priority0000000001", 10)
        polls = 0

        async def poll_forever() -> None:
            nonlocal polls
            while True:
                await lim.acquire(Priority.POLL)
                polls += 1

        pollers = [asyncio.create_task(poll_forever()) for _ in range(4)]
        await asyncio.sleep(0.5)
        p0, t_poll = polls, time.monotonic()
        await asyncio.sleep(2.0)
        poll_rate = (polls - p0) / (time.monotonic() - t_poll)
        assert poll_rate <= 0.6 * 10, f"polling took {poll_rate:.1f}/s of 10/s"
        t0 = time.monotonic()
        for _ in range(5):
            await lim.acquire(Priority.ORDER)
        # orders move at the full rate (one interval of 0.103 s each) as if polling were not there
        assert time.monotonic() - t0 < 5 * 0.103 + 0.15, "orders waited behind polling"
        for t in pollers:
            t.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
    finally:
        await pool.close()
