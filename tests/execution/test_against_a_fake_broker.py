"""The Submitter and the Reconciler against the in-memory broker (``ports.InMemoryBroker``), which
keeps the port's "not sent / maybe sent" contract: fast, on a real database (as Execution's role),
no simulator, no processes.  Each case checks what the broker holds, which is what "sent twice"
means, next to what our tables say.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from stock_manager.services.execution.cancels import CancelProcessor
from stock_manager.services.execution.context import Exec, ExecutionConfig, Q
from stock_manager.services.execution.funds import FundsView
from stock_manager.services.execution.notices import NoticeApplier
from stock_manager.services.execution.orders import LeaseLost
from stock_manager.services.execution.ports import InMemoryBroker, Outcome
from stock_manager.services.execution.reconciler import Reconciler
from stock_manager.services.execution.submitter import Submitter
from stock_manager.shared.clock import SystemClock
from stock_manager.shared.db.listen import Waker
from stock_manager.shared.db.pool import Pool, open_pool
from stock_manager.shared.kis.errors import BusinessRejected, KisError, OutcomeUnknown
from stock_manager.shared.kis.models import Side
from stock_manager.shared.market_rules import trade_date
from tests.support.pg import TestDb
from tests.support.sim import seed_symbols

SYMBOL = "005930"
CFG = ExecutionConfig(in_doubt_grace_s=0, stale_pending_s=0.3, send_deadline_s=0.2, owner_dead_after_s=0.3,
                      listing_margin_s=60, lease_ttl_s=30, max_submit_attempts=3, position_check_every=1000)


@dataclass
class World:
    pool: Pool
    admin: Pool
    broker: InMemoryBroker
    db: TestDb

    def execution(self, instance: str = "a", cfg: ExecutionConfig = CFG) -> tuple[Submitter, Reconciler]:
        ex = Exec(self.pool, self.broker, SystemClock(), cfg, instance, Waker())
        funds = FundsView(ex.fees)
        notices = NoticeApplier(ex, funds)
        submitter = Submitter(ex, funds, notices)
        return submitter, Reconciler(ex, notices, submitter, funds)

    async def intent(self, key: str, qty: int = 10, price: int = 70_000) -> str:
        async with self.admin.connection() as conn:
            row = await (await conn.execute(
                "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price)"
                " VALUES (%s, %s, 'BUY', 'ENTRY', %s, 'LMT', %s) RETURNING intent_id",
                (key, SYMBOL, qty, price))).fetchone()
        assert row is not None
        return str(row["intent_id"])

    async def rows(self, query: str, *args: Any) -> list[dict[str, Any]]:
        async with self.admin.connection() as conn:
            return [dict(r) for r in await (await conn.execute(query, args)).fetchall()]

    async def order(self, intent_id: str) -> dict[str, Any]:
        (row,) = await self.rows(
            "SELECT o.*, i.status AS intent_status FROM trade.orders o JOIN trade.order_intents i USING (intent_id)"
            " WHERE o.intent_id = %s", intent_id)
        return row

    async def journal(self, order_id: int) -> list[str]:
        return [r["event"] for r in await self.rows(
            "SELECT event FROM trade.order_events WHERE order_id = %s ORDER BY event_id", order_id)]


@pytest.fixture
async def world(db: TestDb, admin_pool: Pool) -> AsyncIterator[World]:
    seed_symbols(db.admin_url, [SYMBOL])  # the trading state starts ACTIVE (migration 0005)
    pool = await open_pool(db.url("execution"), max_size=4)
    try:
        yield World(pool, admin_pool, InMemoryBroker(SystemClock()), db)
    finally:
        await pool.close()


async def submit(submitter: Submitter) -> None:
    await submitter.cycle()
    await submitter.drain()


async def reconcile(reconciler: Reconciler) -> dict[str, int]:
    reconciler.fence = await reconciler.take_lease()
    assert reconciler.fence is not None
    done = await reconciler.pass_once()
    await reconciler.submitter.drain()
    return done


async def test_an_ack_links_the_order_once(world: World) -> None:
    submitter, _ = world.execution()
    iid = await world.intent("ack")
    await submit(submitter)
    o = await world.order(iid)
    assert (o["status"], o["intent_status"], o["submit_attempts"]) == ("SUBMITTED", "SUBMITTED", 1)
    (placed,) = world.broker.placed
    assert o["broker_order_no"] == placed.odno and world.broker.slots == 1  # its slot, taken once
    assert await world.journal(o["order_id"]) == ["CREATED", "ACKED"]


async def test_a_lost_answer_is_found_and_never_sent_again(world: World) -> None:
    submitter, reconciler = world.execution()
    world.broker.script(Outcome.TAKEN_NO_ANSWER)
    iid = await world.intent("taken")
    await submit(submitter)
    assert (await world.order(iid))["status"] == "IN_DOUBT"
    done = await reconcile(reconciler)
    o = await world.order(iid)
    assert done["resolved"] == 1 and done["resent"] == 0
    assert (o["status"], o["intent_status"], o["broker_order_no"]) == ("SUBMITTED", "SUBMITTED",
                                                                       world.broker.placed[0].odno)
    assert world.broker.requests == 1 and len(world.broker.placed) == 1
    assert await world.journal(o["order_id"]) == ["CREATED", "OUTCOME_UNKNOWN", "FOUND"]


async def test_a_lost_request_is_sent_again_once(world: World) -> None:
    submitter, reconciler = world.execution()
    world.broker.script(Outcome.LOST)
    iid = await world.intent("lost")
    await submit(submitter)
    done = await reconcile(reconciler)
    assert done["resent"] == 1
    o = await world.order(iid)
    assert (o["status"], o["submit_attempts"], o["intent_status"]) == ("SUBMITTED", 2, "SUBMITTED")
    assert world.broker.requests == 2 and len(world.broker.placed) == 1
    assert (await reconcile(reconciler))["resent"] == 0  # linked now: nothing more to do
    assert len(world.broker.placed) == 1
    assert await world.journal(o["order_id"]) == ["CREATED", "OUTCOME_UNKNOWN", "ABSENT", "ACKED"]


@pytest.mark.parametrize(("outcome", "status", "intent_status"),
                         [(Outcome.NOT_SENT, "ERROR", "FAILED"), (Outcome.REJECT, "REJECTED", "REJECTED")])
async def test_a_definite_no_is_final_and_nothing_is_placed(world: World, outcome: Outcome, status: str,
                                                            intent_status: str) -> None:
    submitter, reconciler = world.execution()
    world.broker.script(outcome)
    iid = await world.intent("no")
    await submit(submitter)
    await reconcile(reconciler)
    o = await world.order(iid)
    assert (o["status"], o["intent_status"]) == (status, intent_status)
    assert world.broker.placed == [] and world.broker.requests == 1


async def test_absent_after_the_last_attempt_is_given_up(world: World) -> None:
    submitter, reconciler = world.execution()
    world.broker.script([Outcome.LOST] * 3)
    iid = await world.intent("gone")
    await submit(submitter)
    for _ in range(3):
        await reconcile(reconciler)
    o = await world.order(iid)
    assert (o["status"], o["intent_status"], o["submit_attempts"]) == ("ERROR", "FAILED", 3)
    assert world.broker.placed == [] and world.broker.requests == 3
    assert (await world.journal(o["order_id"]))[-1] == "GIVEN_UP"


async def test_a_write_ahead_whose_sender_vanished_is_sent_by_the_reconciler(world: World) -> None:
    """Written ahead by an incarnation that died before sending and left no heartbeat: taken into
    doubt, found absent, sent again, once."""
    iid = await world.intent("vanished")
    async with world.admin.connection() as conn:
        await conn.execute("UPDATE trade.order_intents SET status = 'PROCESSING', claimed_by = 'dead#1',"
                           " claimed_ts = clock_timestamp() WHERE intent_id = %s", (iid,))
        await conn.execute(Q["write_ahead_many"], {
            "me": "dead#1", "intent_ids": [iid], "trade_dates": [trade_date(SystemClock().now())],
            "symbols": [SYMBOL], "sides": ["BUY"], "qtys": [10], "order_types": ["LMT"], "ord_dvsns": ["00"],
            "limit_prices": [70_000], "market_ts": [SystemClock().now()]})
    await asyncio.sleep(CFG.stale_pending_s + 0.1)
    _, reconciler = world.execution("alive")
    assert (await reconcile(reconciler))["resent"] == 1
    o = await world.order(iid)
    assert (o["status"], o["submit_attempts"], o["intent_status"]) == ("SUBMITTED", 2, "SUBMITTED")
    assert len(world.broker.placed) == 1
    assert await world.journal(o["order_id"]) == ["CREATED", "OUTCOME_UNKNOWN", "ABSENT", "ACKED"]


async def test_a_reconciler_whose_lease_moved_on_writes_and_sends_nothing(world: World) -> None:
    submitter, stale = world.execution("a")
    _, current = world.execution("b")
    world.broker.script(Outcome.LOST)
    iid = await world.intent("fenced")
    await submit(submitter)
    stale.fence = await stale.take_lease()
    assert stale.fence is not None
    # a's lease lapses (it was frozen) and b takes it over: a new epoch
    await world.rows("UPDATE trade.leader_leases SET expires_ts = clock_timestamp() - interval '1 s' RETURNING 1")
    current.fence = await current.take_lease()
    assert current.fence is not None and current.fence.epoch == stale.fence.epoch + 1
    with pytest.raises(LeaseLost):
        await stale.pass_once()  # its own clock has not noticed; the database refuses every write
    assert world.broker.requests == 1 and (await world.order(iid))["status"] == "IN_DOUBT"
    stale_order = await world.order(iid)
    with pytest.raises(LeaseLost):  # nor can its re-send, the one step that leads to a second send
        await stale._absent(stale_order)
    assert world.broker.requests == 1 and world.broker.placed == []
    assert (await current.pass_once())["resent"] == 1
    await current.submitter.drain()
    assert len(world.broker.placed) == 1
    epochs = {r["epoch"] for r in await world.rows("SELECT epoch FROM trade.order_events WHERE epoch IS NOT NULL")}
    assert epochs == {current.fence.epoch}


async def test_two_reconcilers_never_send_one_order_twice(world: World) -> None:
    """Both think they may resolve the same order in doubt; the compare-and-set lets one re-send."""
    submitter, first = world.execution("a")
    world.broker.script(Outcome.LOST)
    iid = await world.intent("race")
    await submit(submitter)
    first.fence = await first.take_lease()
    (stale,) = await world.rows("SELECT * FROM trade.orders WHERE intent_id = %s", iid)
    results = await asyncio.gather(first._absent(dict(stale)), first._absent(dict(stale)))
    await first.submitter.drain()
    assert sorted(results) == [False, True]
    assert len(world.broker.placed) == 1 and (await world.order(iid))["submit_attempts"] == 2


async def test_a_cancel_through_the_port(world: World) -> None:
    submitter, _ = world.execution()
    iid = await world.intent("to-cancel")
    await submit(submitter)
    o = await world.order(iid)
    async with world.admin.connection() as conn:
        await conn.execute("INSERT INTO trade.cancel_requests (request_key, order_id, intent_id, symbol, reason)"
                           " VALUES ('c1', %s, %s, %s, 'test')", (o["order_id"], iid, SYMBOL))
    ex = submitter.ex
    await CancelProcessor(ex).cycle()
    (a,) = await world.rows("SELECT a.status, r.status AS request FROM trade.order_amendments a"
                            " JOIN trade.cancel_requests r USING (request_id)")
    assert (a["status"], a["request"]) == ("ACCEPTED", "DONE")
    cancels = [r for r in world.broker.placed if r.orgn_odno == o["broker_order_no"]]
    assert len(cancels) == 1 and cancels[0].side is Side.BUY
    (original,) = [r for r in world.broker.placed if r.odno == o["broker_order_no"]]
    assert original.cncl_cfrm_qty == 10 and original.rmn_qty == 0


async def test_the_fake_keeps_the_ports_contract() -> None:
    """What the Submitter and the Reconciler rely on, as the KIS adapter does it (its classification
    on real sockets: tests/unit/kis/test_kis_transport.py): a definite no or a request that never
    arrived places nothing; "maybe sent" is OutcomeUnknown whether or not the order was taken; the
    day's list holds every order taken."""
    broker = InMemoryBroker(SystemClock())
    broker.script(Outcome.NOT_SENT, Outcome.REJECT, Outcome.LOST, Outcome.TAKEN_NO_ANSWER)
    for expected in (KisError, BusinessRejected, OutcomeUnknown, OutcomeUnknown):
        with pytest.raises(expected) as e:
            await broker.place(Side.BUY, SYMBOL, 1, "00", 70_000, slot_taken=False)
        assert isinstance(e.value, OutcomeUnknown) == (expected is OutcomeUnknown)
    ack = await broker.place(Side.BUY, SYMBOL, 2, "00", 70_000, slot_taken=True)
    listed = await broker.orders_of_day(broker.placed[0].ord_dt, ordered_since=None)
    assert [r.ord_qty for r in listed] == [2, 1]  # newest first: the acked one, the one whose answer was lost
    assert listed[0].odno.lstrip("0") == ack.odno and broker.requests == 5 and broker.slots == 4
