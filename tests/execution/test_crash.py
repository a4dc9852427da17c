"""Exactly once through crashes: the simulator injects faults, Execution is SIGKILLed at random
moments and restarted, and at the end our tables are checked against the simulator's ground truth.

Kept short in CI; ``SM_CRASH_INTENTS=500 SM_CRASH_KILLS=10 pytest tests/execution/test_crash.py``
runs it longer.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from tests.execution.conftest import SYMBOLS, Stack

N_INTENTS = int(os.environ.get("SM_CRASH_INTENTS", "160"))
N_KILLS = int(os.environ.get("SM_CRASH_KILLS", "4"))
FAULTS = {"http_500_rate": 0.05, "egw00201_rate": 0.05, "timeout_rate": 0.03, "lost_response_rate": 0.05,
          "fault_paths": ["order-cash"]}
CRASH_ENV = {"KIS_ORDER_TIMEOUT_S": "2", "KIS_READ_TIMEOUT_S": "5", "SM_EXEC_STALE_PENDING_S": "3",
             "SM_EXEC_SEND_DEADLINE_S": "2",  # before a resolver may take a write-ahead (stale pending)
             "SM_EXEC_OWNER_DEAD_AFTER_S": "3", "SM_EXEC_IN_DOUBT_GRACE_S": "1", "SM_EXEC_LEASE_TTL_S": "3",
             # lists that reach back only a second before the oldest open order: in-doubt orders
             # are resolved, and re-sent only when absent, from lists that leave the rest out
             "SM_EXEC_LISTING_MARGIN_S": "1", "SM_EXEC_FULL_LISTING_EVERY": "1000"}
FINAL = ("SUBMITTED", "REJECTED", "FAILED", "DUPLICATE")


def _insert_batch(stack: Stack, rng: random.Random, start: int, n: int) -> None:
    for i in range(start, start + n):
        sym = rng.choice(SYMBOLS[:4])
        if rng.random() < 0.6:
            stack.intent(f"crash-{i}", sym, "BUY", rng.randint(1, 5))
        else:  # a resting or crossing limit order, always on the tick grid
            price = {"005930": 70_000, "000660": 180_000, "035420": 200_000, "035720": 41_000}[sym]
            stack.intent(f"crash-{i}", sym, "BUY", rng.randint(1, 5), "LMT", price)


def test_no_order_twice_no_fill_lost_through_kills_and_faults(stack: Stack) -> None:
    rng = random.Random(int(os.environ.get("SM_CRASH_SEED", "7")))
    stack.sim.faults(**FAULTS)
    try:
        proc = stack.start(**CRASH_ENV)
        per_wave = max(1, N_INTENTS // (N_KILLS + 1))
        inserted = 0
        for _ in range(N_KILLS):
            _insert_batch(stack, rng, inserted, per_wave)
            inserted += per_wave
            time.sleep(rng.uniform(0.2, 1.5))
            proc.kill9()
            time.sleep(rng.uniform(0.0, 0.5))
            proc = stack.start(**CRASH_ENV)
        _insert_batch(stack, rng, inserted, N_INTENTS - inserted)
    finally:
        stack.sim.faults(http_500_rate=0, egw00201_rate=0, timeout_rate=0, lost_response_rate=0)

    stack.wait(lambda: stack.sql(
        "SELECT count(*) AS n FROM trade.order_intents WHERE status <> ALL(%s)", (list(FINAL),))[0]["n"] == 0
        and stack.sql("SELECT count(*) AS n FROM trade.orders WHERE status IN ('PENDING_SUBMIT', 'IN_DOUBT')"
                      )[0]["n"] == 0, within=120, what="every intent final and nothing in doubt")
    stack.wait(lambda: not _fill_mismatches(stack), within=60, what="fills to match the broker")
    _check_invariants(stack)


def _fill_mismatches(stack: Stack) -> list[str]:
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


def _check_invariants(stack: Stack) -> None:
    intents = stack.sql("SELECT intent_id, status FROM trade.order_intents")
    assert len(intents) == N_INTENTS
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
    assert not _fill_mismatches(stack)
    broker_fills: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in stack.broker_fills():
        broker_fills[f["odno"]].append(f)
    ours = stack.sql("SELECT o.broker_order_no, f.qty, f.price, f.source FROM trade.fills f "
                     "JOIN trade.orders o USING (order_id)")
    assert sum(f["qty"] for f in ours) == sum(f["qty"] for fs in broker_fills.values() for f in fs)
