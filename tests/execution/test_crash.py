"""Exactly once through crashes: the simulator injects faults, Execution is SIGKILLed at random
moments and restarted, and at the end our tables are checked against the simulator's ground truth.

Kept short in CI; ``SM_CRASH_INTENTS=500 SM_CRASH_KILLS=10 pytest tests/execution/test_crash.py``
runs it longer.
"""

from __future__ import annotations

import os
import random
import time

from tests.execution.conftest import SYMBOLS, Stack, settle_and_check_exactly_once

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

    settle_and_check_exactly_once(stack, N_INTENTS)
