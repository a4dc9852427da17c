"""The one write of an order's status (``orders.apply``) on a real database: a compare-and-set that
only one writer wins, the journal row and the intent's outcome in the same statement, the attempt
held, the database's trigger behind it, and the reconciler's lease epoch checked in the statement."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import psycopg
import pytest

from stock_manager.services.execution.context import Q
from stock_manager.services.execution.orders import Fence, LeaseLost, apply
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.trade_states import IllegalTransition, OrderEvent, OrderStatus
from tests.support.pg import TestDb

DAY = date(2026, 11, 23)
LEASE = "execution-reconciler"


async def written_ahead(pool: Pool, key: str = "k1") -> int:
    async with pool.connection() as conn:
        intent = await (await conn.execute(
            "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price)"
            " VALUES (%s, '005930', 'BUY', 'ENTRY', 10, 'LMT', 70000) RETURNING intent_id", (key,))).fetchone()
        assert intent is not None
        await conn.execute("UPDATE trade.order_intents SET status = 'PROCESSING' WHERE intent_id = %s",
                           (intent["intent_id"],))
        rows = await (await conn.execute(Q["write_ahead_many"], {
            "me": "test#1", "intent_ids": [intent["intent_id"]], "trade_dates": [DAY], "symbols": ["005930"],
            "sides": ["BUY"], "qtys": [10], "order_types": ["LMT"], "ord_dvsns": ["00"], "limit_prices": [70000],
            "market_ts": [None]})).fetchall()
    return int(rows[0]["order_id"])


async def state(pool: Pool, order_id: int) -> tuple[str, str, list[tuple[str, str, str]]]:
    async with pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT o.status, i.status AS intent_status FROM trade.orders o"
            " JOIN trade.order_intents i USING (intent_id) WHERE o.order_id = %s", (order_id,))).fetchone()
        journal = await (await conn.execute(
            "SELECT event, from_status, to_status FROM trade.order_events WHERE order_id = %s ORDER BY event_id",
            (order_id,))).fetchall()
    assert row is not None
    return row["status"], row["intent_status"], [(j["event"], j["from_status"], j["to_status"]) for j in journal]


async def test_an_ack_links_the_order_ends_the_intent_and_is_journaled(admin_pool: Pool) -> None:
    order_id = await written_ahead(admin_pool)
    async with admin_pool.connection() as conn:
        row = await apply(conn, order_id, OrderEvent.ACKED, OrderStatus.PENDING_SUBMIT, attempt=1, actor="test#1",
                          broker_order_no="0000000123", broker_org_no="06010", raw={"rt_cd": "0"})
    assert row is not None and row["status"] == "SUBMITTED" and row["broker_order_no"] == "0000000123"
    assert row["submitted_ts"] is not None and row["raw"] == {"rt_cd": "0"}
    assert await state(admin_pool, order_id) == ("SUBMITTED", "SUBMITTED", [
        ("CREATED", "NONE", "PENDING_SUBMIT"), ("ACKED", "PENDING_SUBMIT", "SUBMITTED")])


async def test_of_two_writers_from_the_same_state_one_wins(admin_pool: Pool) -> None:
    """The sender's late outcome and a resolver's step race: exactly one compare-and-set succeeds."""
    order_id = await written_ahead(admin_pool)

    async def step(event: OrderEvent, **fields: object) -> object:
        async with admin_pool.connection() as conn:
            return await apply(conn, order_id, event, OrderStatus.PENDING_SUBMIT, actor="test", **fields)

    results = await asyncio.gather(step(OrderEvent.OUTCOME_UNKNOWN, reason="timeout"),
                                   step(OrderEvent.FOUND, broker_order_no="0000000777"),
                                   step(OrderEvent.NOT_SENT, reason="refused"))
    assert sum(r is not None for r in results) == 1
    _, _, journal = await state(admin_pool, order_id)
    assert len(journal) == 2  # the creation and the one step that won


async def test_the_attempt_is_part_of_the_compare_and_set(admin_pool: Pool) -> None:
    """A late outcome of attempt 1 never lands on attempt 2."""
    order_id = await written_ahead(admin_pool)
    async with admin_pool.connection() as conn:
        assert await apply(conn, order_id, OrderEvent.OUTCOME_UNKNOWN, OrderStatus.PENDING_SUBMIT, attempt=1,
                           actor="a") is not None
        again = await apply(conn, order_id, OrderEvent.ABSENT, OrderStatus.IN_DOUBT, attempt=1, actor="r",
                            claimed_by="r")
        assert again is not None and again["submit_attempts"] == 2 and again["claimed_by"] == "r"
        assert await apply(conn, order_id, OrderEvent.NOT_SENT, OrderStatus.PENDING_SUBMIT, attempt=1,
                           actor="a") is None
        assert await apply(conn, order_id, OrderEvent.NOT_SENT, OrderStatus.PENDING_SUBMIT, attempt=2,
                           actor="r", reason="refused") is not None
    assert await state(admin_pool, order_id) == ("ERROR", "FAILED", [
        ("CREATED", "NONE", "PENDING_SUBMIT"), ("OUTCOME_UNKNOWN", "PENDING_SUBMIT", "IN_DOUBT"),
        ("ABSENT", "IN_DOUBT", "PENDING_SUBMIT"), ("NOT_SENT", "PENDING_SUBMIT", "ERROR")])


async def test_a_step_the_table_lacks_is_refused_before_the_database(admin_pool: Pool) -> None:
    order_id = await written_ahead(admin_pool)
    async with admin_pool.connection() as conn:
        with pytest.raises(IllegalTransition):
            await apply(conn, order_id, OrderEvent.FILLED, OrderStatus.PENDING_SUBMIT, actor="t")
        with pytest.raises(TypeError, match="no such field"):
            await apply(conn, order_id, OrderEvent.ACKED, OrderStatus.PENDING_SUBMIT, actor="t", symbol="x")


async def test_the_trigger_stays_the_backstop(db: TestDb, admin_pool: Pool) -> None:
    """A status written any other way, even by Execution's own role, still meets the trigger."""
    order_id = await written_ahead(admin_pool)
    async with await psycopg.AsyncConnection.connect(db.url("execution"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation, match="PENDING_SUBMIT -> FILLED"):
            await conn.execute("UPDATE trade.orders SET status = 'FILLED' WHERE order_id = %s", (order_id,))


async def _lease(pool: Pool, holder: str, epoch: int, ttl_s: float = 30) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO trade.leader_leases (name, holder, expires_ts, epoch)"
            " VALUES (%s, %s, clock_timestamp() + make_interval(secs => %s), %s)"
            " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_ts = EXCLUDED.expires_ts,"
            " epoch = EXCLUDED.epoch", (LEASE, holder, ttl_s, epoch))


async def test_a_reconciler_that_lost_its_lease_writes_nothing(admin_pool: Pool) -> None:
    order_id = await written_ahead(admin_pool)
    far = time.monotonic() + 3600  # as if its own clock had not noticed: the database decides
    await _lease(admin_pool, "old#1", 7)
    async with admin_pool.connection() as conn:
        assert await apply(conn, order_id, OrderEvent.OUTCOME_UNKNOWN, OrderStatus.PENDING_SUBMIT, actor="old#1",
                           fence=Fence(LEASE, "old#1", 7, far)) is not None
    await _lease(admin_pool, "new#2", 8)  # another process took the lease over
    for stale in (Fence(LEASE, "old#1", 7, far), Fence(LEASE, "new#2", 7, far), Fence(LEASE, "old#1", 8, far)):
        async with admin_pool.connection() as conn:
            with pytest.raises(LeaseLost):
                await apply(conn, order_id, OrderEvent.ABSENT, OrderStatus.IN_DOUBT, actor="old#1", fence=stale,
                            claimed_by="old#1")
    assert (await state(admin_pool, order_id))[0] == "IN_DOUBT"
    await _lease(admin_pool, "new#2", 8, ttl_s=-1)  # lapsed, not yet taken again: nobody may write
    async with admin_pool.connection() as conn:
        with pytest.raises(LeaseLost):
            await apply(conn, order_id, OrderEvent.ABSENT, OrderStatus.IN_DOUBT, actor="new#2",
                        fence=Fence(LEASE, "new#2", 8, far))
    assert await state(admin_pool, order_id) == ("IN_DOUBT", "PROCESSING", [
        ("CREATED", "NONE", "PENDING_SUBMIT"), ("OUTCOME_UNKNOWN", "PENDING_SUBMIT", "IN_DOUBT")])
    with pytest.raises(LeaseLost):  # and a pass past its own deadline stops before asking
        Fence(LEASE, "new#2", 8, time.monotonic() - 1).check()
