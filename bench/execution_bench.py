"""Execution benchmark: ``python -m bench.execution_bench`` prints a table.

Real processes (simulator, Execution) on a scratch database:
1. latency from an intent's INSERT (its created_ts) to the order POST arriving at the simulator,
   with NOTIFY waking Execution, simulator rate limit off;
2. sustained intents/s claimed, submitted and recorded, rate limit off;
3. with the real limit (20/s per app key): share of the budget used and EGW00201 answers.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.common import bench_dir, pct, scratch_db, summary, table
from stock_manager.services.kis_sim.universe import build_universe
from tests.support.pg import PgServer
from tests.support.sim import ServiceProcess, SimProcess, seed_symbols, service_env

Stack = tuple[PgServer, str, SimProcess, Path]


def _account() -> dict[str, str]:
    return {"KIS_APP_KEY": "PS" + uuid.uuid4().hex + "0000", "KIS_ACCOUNT": f"{uuid.uuid4().int % 10**8:08d}-01"}


def _cheap_symbol() -> tuple[str, int]:
    """A liquid symbol under 2,000 won (tick 1), so thousands of resting buys fit the cash."""
    for code, s in build_universe(20260101, 2500).items():
        if 1_200 <= s.prior_close <= 1_900 and not s.halted and s.tier <= 1:
            return code, s.prior_close
    raise RuntimeError("no cheap symbol in the universe")


def _wait(cond: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def _count(url: str, status: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM trade.order_intents WHERE status = %s", (status,)).fetchone()
    return int(row[0]) if row else 0


def latency(stack: Stack, n: int) -> list[float]:
    server, name, sim, logs = stack
    acct = _account()
    sim.faults(rate_limit_per_s=0)
    ex = ServiceProcess("execution", service_env(server.url(name), sim, **acct, SM_EXEC_RECONCILE_S="30",
                                                 KIS_RATE_LIMIT_PER_S="0"),
                        logs).start()
    code, close = _cheap_symbol()
    created: dict[str, float] = {}
    try:
        time.sleep(4)  # token, lease, first reconcile
        with psycopg.connect(server.url(name, "sm_strategy"), autocommit=True) as conn:
            for i in range(n):
                row = conn.execute(
                    "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type,"
                    " limit_price) VALUES (%s, %s, 'BUY', 'ENTRY', 1, 'LMT', %s)"
                    " RETURNING intent_id, extract(epoch FROM created_ts)",
                    (f"lat-{i}", code, close - 50)).fetchone()
                assert row is not None
                created[str(row[0])] = float(row[1])
                time.sleep(0.02)
        _wait(lambda: _count(server.url(name), "SUBMITTED") >= n, 60)
    finally:
        ex.stop()
    with psycopg.connect(server.url(name)) as conn:
        linked = dict(conn.execute("SELECT broker_order_no, intent_id::text FROM trade.orders").fetchall())
    out = []
    for o in sim.orders():
        if o["account"] == acct["KIS_ACCOUNT"] and o["odno"] in linked:
            out.append((o["received_wall"] - created[linked[o["odno"]]]) * 1000)
    return out


def throughput(stack: Stack, n: int, processes: int = 1) -> tuple[float, float]:
    server, name, sim, logs = stack
    acct = _account()
    sim.faults(rate_limit_per_s=0)
    procs = [ServiceProcess("execution", service_env(server.url(name), sim, **acct, SM_EXEC_RECONCILE_S="60",
                                                     KIS_RATE_LIMIT_PER_S="0"), logs).start()
             for _ in range(processes)]
    code, close = _cheap_symbol()
    try:
        time.sleep(4)
        before = _count(server.url(name), "SUBMITTED")
        with psycopg.connect(server.url(name, "sm_strategy"), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price)"
                " SELECT 'tp-' || %s || '-' || g, %s, 'BUY', 'ENTRY', 1, 'LMT', %s - (g %% 20)"
                " FROM generate_series(1, %s) g",
                (uuid.uuid4().hex[:6], code, close - 30, n))
        t0 = time.perf_counter()
        _wait(lambda: _count(server.url(name), "SUBMITTED") - before >= n, 120)
        elapsed = time.perf_counter() - t0
        done = _count(server.url(name), "SUBMITTED") - before
    finally:
        for ex in procs:
            ex.stop()
    walls = [o["received_wall"] for o in sim.orders() if o["account"] == acct["KIS_ACCOUNT"]]
    sim_rate = (len(walls) - 1) / (max(walls) - min(walls)) if len(walls) > 1 else 0.0
    return done / elapsed, sim_rate


def budget(stack: Stack, seconds: float, limit: int) -> tuple[float, int, int, float]:
    server, name, sim, logs = stack
    acct = _account()
    sim.faults(rate_limit_per_s=limit)
    ex = ServiceProcess("execution", service_env(server.url(name), sim, **acct, KIS_RATE_LIMIT_PER_S=str(limit)),
                        logs).start()
    code, close = _cheap_symbol()
    try:
        time.sleep(4)
        with psycopg.connect(server.url(name, "sm_strategy"), autocommit=True) as conn:
            # keep a backlog so Execution always has work: twice the budget, all at once
            conn.execute(
                "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price)"
                " SELECT 'rl-' || %s || '-' || g, %s, 'BUY', 'ENTRY', 1, 'LMT', %s FROM generate_series(1, %s) g",
                (uuid.uuid4().hex[:6], code, close - 40, int(seconds * limit * 2)))
            time.sleep(3)  # settle into the steady state
            s0 = sim.get("/sim/stats")
            t0 = time.perf_counter()
            time.sleep(seconds)
            s1 = sim.get("/sim/stats")
            elapsed = time.perf_counter() - t0
    finally:
        ex.stop()
    requests = s1["requests"] - s0["requests"]
    # the closest that limit + 1 orders came at the broker: under a second would be one too many
    walls = sorted(o["received_wall"] for o in sim.orders() if o["account"] == acct["KIS_ACCOUNT"])
    closest = min((b - a for a, b in zip(walls, walls[limit:], strict=False)), default=float("nan"))
    return requests / elapsed, s1["rate_limited"] - s0["rate_limited"], requests, closest * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--latency-n", type=int, default=300)
    ap.add_argument("--throughput-n", type=int, default=5000)
    ap.add_argument("--budget-s", type=float, default=20.0)
    ap.add_argument("--only", choices=("latency", "throughput", "budget"), default=None,
                    help="run one part only")
    args = ap.parse_args()
    run = {part: args.only in (None, part) for part in ("latency", "throughput", "budget")}
    logs = bench_dir()
    with scratch_db("sm_bench_exec") as (server, name):
        seed_symbols(server.url(name))
        sim = SimProcess(log_dir=logs).start()
        sim.clock()
        stack = (server, name, sim, logs)
        try:
            rows: list[tuple[str, str, str]] = []
            if run["latency"]:
                rows += _latency_rows(latency(stack, args.latency_n))
            if run["throughput"]:
                rows += _throughput_rows(args.throughput_n, throughput(stack, args.throughput_n),
                                         throughput(stack, args.throughput_n, processes=2))
            if run["budget"]:
                rows += _budget_rows(*budget(stack, args.budget_s, 20))
        finally:
            sim.stop()
    print(table(f"Execution benchmark ({os.cpu_count()} cores)", rows))


def _latency_rows(lat: list[float]) -> list[tuple[str, str, str]]:
    return [
        ("intent INSERT -> order POST at the broker (ms)", summary(lat),
         "p50 <= 10 ms, p99 <= 30 ms"),
        ("  p50 / p99", f"{pct(lat, 50):.2f} / {pct(lat, 99):.2f} ms",
         "PASS" if pct(lat, 50) <= 10 and pct(lat, 99) <= 30 else "FAIL"),
    ]


def _throughput_rows(n: int, one: tuple[float, float], two: tuple[float, float]) -> list[tuple[str, str, str]]:
    (tp, sim_rate), (tp2, sim_rate2) = one, two
    return [
        (f"sustained intents/s, limit off ({n} intents)",
         f"{tp:.0f}/s recorded ({sim_rate:.0f}/s arriving at the broker)",
         "PASS >= 300/s" if tp >= 300 else "FAIL (>= 300/s)"),
        ("  the same with two Execution processes", f"{tp2:.0f}/s recorded ({sim_rate2:.0f}/s at the broker)",
         "PASS >= 300/s" if tp2 >= 300 else "FAIL (>= 300/s)"),
    ]


def _budget_rows(rps: float, limited: int, total: int, closest_ms: float) -> list[tuple[str, str, str]]:
    return [
        ("real limit 20/s: requests/s used", f"{rps:.2f}/s = {rps / 20:.1%} of budget ({total} requests)",
         "PASS >= 95%" if rps / 20 >= 0.95 else "FAIL (>= 95%)"),
        ("real limit 20/s: EGW00201 answers", str(limited), "PASS (0)" if limited == 0 else "FAIL (0)"),
        ("  closest 21 orders at the broker span", f"{closest_ms:.1f} ms", "the broker refuses under 1000 ms"),
    ]


if __name__ == "__main__":
    main()
