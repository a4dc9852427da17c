from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.pg import TestDb
from tests.support.sim import ServiceProcess, SimProcess, seed_symbols, service_env

SYMBOLS = ["005930", "000660", "035420", "035720", "068270", "247540"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    s = SimProcess(log_dir=tmp_path_factory.mktemp("sim")).start()
    s.clock()
    try:
        yield s
    finally:
        s.stop()


class Stack:
    """One test's world: its database, its own broker account on the shared simulator, processes."""

    def __init__(self, db: TestDb, sim: SimProcess, log_dir: Path) -> None:
        self.db = db
        self.sim = sim
        self.log_dir = log_dir
        self.account = f"{uuid.uuid4().int % 10**8:08d}-01"
        self.app_key = "PS" + uuid.uuid4().hex + "0000"
        self.procs: list[ServiceProcess] = []
        seed_symbols(db.admin_url, SYMBOLS)

    def env(self, **extra: str) -> dict[str, str]:
        return service_env(self.db.admin_url, self.sim, KIS_APP_KEY=self.app_key, KIS_ACCOUNT=self.account,
                           SM_EXEC_RECONCILE_S="1", SM_EXEC_RECONCILE_FAST_S="1", SM_EXEC_POLL_S="0.5", **extra)

    def start(self, name: str = "execution", **extra: str) -> ServiceProcess:
        p = ServiceProcess(name, self.env(**extra), self.log_dir).start()
        self.procs.append(p)
        return p

    def sql(self, query: str, params: Any = None, role: str | None = None) -> list[dict[str, Any]]:
        url = self.db.url(role) if role else self.db.admin_url
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def intent(self, key: str, symbol: str, side: str, qty: int, order_type: str = "MKT",
               limit_price: int | None = None, intent_type: str | None = None) -> str:
        it = intent_type or ("ENTRY" if side == "BUY" else "EXIT_FULL")
        row = self.sql(
            "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING intent_id",
            (key, symbol, side, it, qty, order_type, limit_price), role="strategy")
        return str(row[0]["intent_id"])

    def broker_orders(self) -> list[dict[str, Any]]:
        return [o for o in self.sim.orders() if o.get("account") == self.account]

    def broker_fills(self) -> list[dict[str, Any]]:
        return [f for f in self.sim.fills() if f.get("account") == self.account]

    def wait(self, cond: Callable[[], Any], within: float = 30, what: str = "condition") -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            value = cond()
            if value:
                return value
            for p in self.procs:
                if p.proc is not None and p.proc.poll() is not None and p.proc.returncode not in (0, -9, -15):
                    pytest.fail(f"{p.name} died ({p.proc.returncode}):\n{p.log()[-3000:]}")
            time.sleep(0.2)
        logs = "\n".join(p.log()[-2000:] for p in self.procs)
        pytest.fail(f"timed out waiting for {what}\n{logs}")

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


@pytest.fixture
def stack(db: TestDb, sim: SimProcess, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(db, sim, tmp_path)
    try:
        yield s
    finally:
        s.stop()


FINAL = ("SUBMITTED", "REJECTED", "FAILED", "DUPLICATE")


def fill_mismatches(stack: Stack) -> list[str]:
    """Orders whose fills here differ from the broker's (quantity or amount)."""
    broker = {o["odno"]: o for o in stack.broker_orders() if o["kind"] == "NEW"}
    ours = stack.sql("SELECT o.broker_order_no, o.filled_qty, coalesce(sum(f.qty), 0) AS fq, "
                     "coalesce(sum(f.qty * f.price), 0) AS famt FROM trade.orders o "
                     "LEFT JOIN trade.fills f ON f.order_id = o.order_id "
                     "WHERE o.broker_order_no IS NOT NULL GROUP BY o.order_id")
    bad = []
    for o in ours:
        b = broker.get(o["broker_order_no"])
        if b is None or int(o["fq"]) != b["filled_qty"] or int(o["filled_qty"]) != b["filled_qty"] \
                or Decimal(o["famt"]) != Decimal(b["filled_amt"]):
            bad.append(f"{o['broker_order_no']}: ours {o['fq']}/{o['famt']} broker {b and b['filled_qty']}")
    return bad


def settle_and_check_exactly_once(stack: Stack, n_intents: int) -> None:
    """Wait for every intent to be final and every fill to match, then check against the
    simulator's ground truth: no intent reached the broker twice, no fill was lost or counted twice."""
    def unsettled() -> list[dict[str, Any]]:
        return stack.sql(
            "SELECT i.intent_id, i.status AS intent, i.claimed_by, o.order_id, o.status AS order_status,"
            " o.submit_attempts, o.claimed_by AS owner, o.status_reason, o.updated_ts"
            " FROM trade.order_intents i LEFT JOIN trade.orders o USING (intent_id)"
            " WHERE i.status <> ALL(%s) OR o.status IN ('PENDING_SUBMIT', 'IN_DOUBT')", (list(FINAL),))

    try:
        stack.wait(lambda: not unsettled(), within=120, what="every intent final and nothing in doubt")
    except pytest.fail.Exception as e:
        journal = stack.sql("SELECT order_id, event, from_status, to_status, attempt, epoch, actor, ts"
                            " FROM trade.order_events WHERE order_id = ANY(%s) ORDER BY event_id",
                            ([r["order_id"] for r in unsettled() if r["order_id"]],))
        raise AssertionError(f"{e}\nleft: {unsettled()}\njournal: {journal}") from None
    stack.wait(lambda: not fill_mismatches(stack), within=60, what="fills to match the broker")
    intents = stack.sql("SELECT intent_id, status FROM trade.order_intents")
    assert len(intents) == n_intents
    assert all(i["status"] in FINAL for i in intents)
    orders = stack.sql("SELECT order_id, intent_id, broker_order_no, status FROM trade.orders")
    broker_new = [o for o in stack.broker_orders() if o["kind"] == "NEW"]

    # every broker order belongs to exactly one intent, and no intent has two broker orders
    by_odno: dict[str, Any] = {o["broker_order_no"]: o for o in orders if o["broker_order_no"]}
    orphans = [b["odno"] for b in broker_new if b["odno"] not in by_odno]
    assert not orphans, f"broker orders that belong to no intent: {orphans}"
    per_intent = Counter(str(by_odno[b["odno"]]["intent_id"]) for b in broker_new)
    assert max(per_intent.values(), default=0) <= 1, f"intents sent twice: {per_intent.most_common(3)}"

    # an intent that says it was submitted has its broker order; one that failed has none
    status = {str(i["intent_id"]): i["status"] for i in intents}
    for iid in per_intent:
        assert status[iid] == "SUBMITTED", (iid, status[iid])
    assert sum(1 for s in status.values() if s == "SUBMITTED") == len(broker_new)

    # every broker fill is in trade.fills once: per order the quantities and amounts agree
    assert not fill_mismatches(stack)
    broker_fills: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in stack.broker_fills():
        broker_fills[f["odno"]].append(f)
    ours = stack.sql("SELECT o.broker_order_no, f.qty, f.price, f.source FROM trade.fills f "
                     "JOIN trade.orders o USING (order_id)")
    assert sum(f["qty"] for f in ours) == sum(f["qty"] for fs in broker_fills.values() for f in fs)
