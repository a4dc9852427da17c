"""Fencing, with real processes: the reconciler's lease holder is frozen (SIGSTOP) past its lease
while orders are in doubt, another Execution takes the lease over and resolves them, then the
frozen one is resumed (SIGCONT).  No order reaches the broker twice, no fill is lost, and the
stale leader writes nothing under its old epoch once the lease has moved on.

POSIX only (SIGSTOP); Windows has no way to freeze a process from outside like this.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from typing import Any

import pytest

from tests.execution.conftest import SYMBOLS, Stack, settle_and_check_exactly_once

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP/SIGCONT are POSIX")

LEASE_TTL_S = 3.0
# an order's answer waited for well inside the lease, so a live leader's re-sends never outlast it
ENV = {"KIS_ORDER_TIMEOUT_S": "1", "KIS_READ_TIMEOUT_S": "3", "SM_EXEC_LEASE_TTL_S": str(LEASE_TTL_S),
       "SM_EXEC_STALE_PENDING_S": "3", "SM_EXEC_SEND_DEADLINE_S": "2", "SM_EXEC_OWNER_DEAD_AFTER_S": "3",
       "SM_EXEC_IN_DOUBT_GRACE_S": "1", "SM_EXEC_LISTING_MARGIN_S": "1", "SM_EXEC_FULL_LISTING_EVERY": "1000"}
# orders whose answer is lost (taken: found later) or that hang unprocessed (absent: re-sent)
FAULTS = {"timeout_rate": 0.15, "lost_response_rate": 0.15, "fault_paths": ["order-cash"]}
ROUNDS = int(os.environ.get("SM_FREEZE_ROUNDS", "2"))


def _lease(stack: Stack) -> dict[str, Any] | None:
    rows = stack.sql("SELECT holder, epoch, acquired_ts, expires_ts > clock_timestamp() AS live"
                     " FROM trade.leader_leases WHERE name = 'execution-reconciler'")
    return rows[0] if rows and rows[0]["live"] else None


def _intents(stack: Stack, rng: random.Random, start: int, n: int) -> None:
    for i in range(start, start + n):
        stack.intent(f"freeze-{i}", rng.choice(SYMBOLS[:4]), "BUY", rng.randint(1, 3))


def test_a_frozen_leader_writes_nothing_once_its_lease_moved_on(stack: Stack) -> None:
    rng = random.Random(int(os.environ.get("SM_FREEZE_SEED", "11")))
    stack.sim.faults(**FAULTS)
    procs = [stack.start(**ENV), stack.start(**ENV)]
    by_pid = {p.proc.pid: p for p in procs if p.proc is not None}
    written = 0
    fenced_epochs: list[tuple[str, int, Any]] = []
    try:
        _intents(stack, rng, written, 30)
        written += 30
        for _ in range(ROUNDS):
            lease = stack.wait(lambda: _lease(stack), within=30, what="a reconciler to hold the lease")
            holder, epoch = lease["holder"], int(lease["epoch"])
            pid = int(holder.rsplit("#", 1)[1])
            assert pid in by_pid, f"the lease holder {holder} is one of ours"
            # freeze it in the middle of its work: orders in doubt keep coming while it is stopped
            _intents(stack, rng, written, 15)
            written += 15
            time.sleep(rng.uniform(0.0, 1.0))
            os.kill(pid, signal.SIGSTOP)
            try:
                _intents(stack, rng, written, 15)
                written += 15
                taken = stack.wait(lambda h=holder: (lease2 := _lease(stack)) and lease2["holder"] != h and lease2,
                                   within=30, what="the other process to take the lease over")
                assert int(taken["epoch"]) > epoch
                fenced_epochs.append((holder, epoch, taken["acquired_ts"]))
                time.sleep(LEASE_TTL_S)  # the new leader resolves what was in doubt meanwhile
            finally:
                os.kill(pid, signal.SIGCONT)
            time.sleep(2 * LEASE_TTL_S)  # the stale leader wakes, its pass in the middle of something
    finally:
        stack.sim.faults(timeout_rate=0, lost_response_rate=0)

    settle_and_check_exactly_once(stack, written)

    for holder, epoch, taken_at in fenced_epochs:
        late = stack.sql("SELECT event, order_id, ts FROM trade.order_events WHERE epoch = %s AND ts >= %s",
                         (epoch, taken_at))
        assert not late, f"{holder} wrote under epoch {epoch} after the lease moved on: {late}"
    # the journal names the reconcilers' steps: the takeovers did resolve orders in doubt
    steps = stack.sql("SELECT event, count(*) AS n FROM trade.order_events WHERE epoch IS NOT NULL GROUP BY event")
    assert {r["event"] for r in steps} & {"FOUND", "ABSENT"}, steps
