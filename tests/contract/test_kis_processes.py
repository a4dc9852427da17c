"""Contract: several OS processes sharing one app key share its token and its request budget.

PriceSync, Strategy and Execution are separate processes on one app key.  KIS allows one token
issue a minute and 20 requests a second per app key, so both must hold across processes; the
PostgreSQL ports are what makes them hold.  Each worker (``tests.contract.worker``) is a real
process with its own ``KisRestClient`` connected as a different service role.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from stock_manager.shared.kis.endpoints import KisEnv
from tests.contract.support import TOKEN, Harness, secret

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("pricesync", "strategy", "execution")
SYMBOL = "005930"


async def run_workers(h: Harness, mode: str, **extra: Any) -> list[dict[str, Any]]:
    """Start one worker per role, release them together, return what each printed."""
    procs = []
    for role in ROLES:
        cfg = {
            "mode": mode,
            "db": h.db.url(role),
            "sim": h.sim.url,
            "app_key": secret(h.creds.app_key),
            "app_secret": secret(h.creds.app_secret),
            "account": f"{h.creds.cano}-{h.creds.acnt_prdt_cd}",
            "symbol": SYMBOL,
            "limit": 20,
            "warmup": 0.0,
            "seconds": 0.0,
            **extra,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.contract.worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        )
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(cfg) + "\n").encode())
        await proc.stdin.drain()
        procs.append(proc)
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if line.strip() != b"ready":
                assert proc.stderr is not None
                raise AssertionError(f"worker failed to start: {line!r} {(await proc.stderr.read()).decode()[-2000:]}")
        start_at = time.time() + 0.5  # the barrier: all set up, now all at the same instant
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"go {start_at}\n".encode())
            await proc.stdin.drain()
        results = []
        for role, proc in zip(ROLES, procs, strict=True):
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, f"{role} worker failed:\n{err.decode()[-3000:]}"
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        return [{**r, "start_at": start_at} for r in results]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_three_processes_get_one_token_and_the_broker_issues_it_once(h: Harness) -> None:
    # max_token_wait 0: a process that tried to issue a second token would fail at once, on our
    # 1-per-minute guard or on the broker's EGW00133, instead of quietly waiting a minute
    results = await run_workers(h, "token", max_token_wait=0.0)
    assert len({r["token_sha256"] for r in results}) == 1
    assert all(r["seconds"] < 10 for r in results)

    # the broker's side: its one issue was within the last minute, so another is refused now
    again = h.sim.http.post(
        TOKEN,
        json={"grant_type": "client_credentials", "appkey": secret(h.creds.app_key),
              "appsecret": secret(h.creds.app_secret)},
    )
    assert (again.status_code, again.json()["error_code"]) == (403, "EGW00133")
    with psycopg.connect(h.db.admin_url) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM ops.broker_tokens WHERE key_id = %s", (h.creds.key_id(KisEnv.REAL),)
        ).fetchone()
    assert rows is not None and rows[0] == 1


async def test_three_processes_hammering_stay_under_the_brokers_limit_and_use_it(h: Harness) -> None:
    warmup, seconds, limit = 1.0, 5.0, 20
    # priority ORDER: the full 20/s (a POLL may use only part of the budget, DEFAULT_RESERVE);
    # one warm-up second so that connection set-up is not what is measured
    results = await run_workers(h, "hammer", warmup=warmup, seconds=seconds, tasks=4, limit=limit)
    limited = sum(r["rate_limited"] for r in results)
    errors = [e for r in results for e in r["errors"]]
    assert (limited, errors) == (0, []), f"{limited} EGW00201, errors {errors}"
    assert all(len(r["ok"]) >= 10 for r in results), [len(r["ok"]) for r in results]

    start = results[0]["start_at"] + warmup
    end = start + seconds
    answered = sorted(t for r in results for t in r["ok"] if start <= t < end)
    rate = len(answered) / seconds
    slots = sorted(t for r in results for t in r["slots"] if start <= t < end)  # the database's clock
    interval = 1.05 / limit  # PgRateLimiter's emission interval
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    mean_gap = statistics.fmean(gaps)
    report = (f"{rate:.2f} answers/s of the broker's {limit}/s; slots {mean_gap * 1000:.1f} ms apart on average "
              f"against an interval of {interval * 1000:.1f} ms (at most {1 / mean_gap:.2f}/s)")
    # a grant a little late keeps its slot, so the slots themselves stay an interval apart
    assert min(gaps) >= interval * 0.999, report  # never two slots closer than the interval
    # wake-up and round-trip delays are absorbed by the tolerance, so the budget is used nearly
    # in full (1 / 1.05 of it at most); the rest of the window is the margin for network jitter
    assert rate >= 0.93 * limit, report


def max_in_window(stamps: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while t - stamps[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best
