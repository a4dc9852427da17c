"""Failures: a dead worker (SC-009, in-process and a real kill -9), a timing-out poll (EC-001),
start-up recovery from fills."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stock_manager.services.strategy.scanner import ScanError, Scanner
from stock_manager.shared.clock import ManualClock
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.trade_states import WorkerStatus
from tests.strategy.conftest import make_app
from tests.strategy.flow import enter, row, rows, to_scan
from tests.strategy.support import add_symbol, events, execute
from tests.support.pg import TestDb


def logged(logs: list[dict[str, Any]], level: str, *parts: str) -> bool:
    return any(r["level"] == level and all(p in r["message"] for p in parts) for r in logs)


async def test_sc009_a_dead_workers_locks_are_reclaimed_and_its_position_adopted(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock, logs: list[dict[str, Any]]) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up")
    dead = make_app(strategy_pool, clock, instance="p1")
    (w,) = await to_scan(dead)
    await enter(dead, admin_pool, w, "005930")
    async with admin_pool.connection() as conn:  # p1 stops heartbeating (its process hangs or died)
        await conn.execute("UPDATE trade.workers SET heartbeat_ts = now() - interval '1 minute'"
                           " WHERE worker_id = %s", (w.worker_id,))
    live = make_app(strategy_pool, clock, instance="p2", worker_ttl_s=30)
    (other,) = await to_scan(live)
    assert await live.reap() == 1
    r = await row(admin_pool, "SELECT status, current_symbol FROM trade.workers WHERE worker_id = %s", w.worker_id)
    assert r == {"status": "EXIT", "current_symbol": None}
    assert await rows(admin_pool, "SELECT * FROM trade.symbol_locks WHERE worker_id = %s", w.worker_id) == []
    h = await row(admin_pool, "SELECT from_status, to_status FROM trade.worker_history WHERE worker_id = %s"
                  " ORDER BY history_id DESC LIMIT 1", w.worker_id)
    assert h == {"from_status": "HOLD", "to_status": "EXIT"}
    async with admin_pool.connection() as conn:
        (rel,) = [e for e in await events(conn, "LockReleased") if e["worker_id"] == w.worker_id]
        (failed,) = await events(conn, "WorkerFailed")
    assert rel["symbol"] == "005930" and rel["data"]["reason"] == "worker heartbeat stale"
    assert failed["level"] == "ERROR" and failed["data"]["from_status"] == "HOLD"
    assert logged(logs, "ERROR", "WorkerFailed", w.worker_id, "heartbeat stale")
    assert await live.reap() == 0  # once
    # another worker may now take the symbol: it adopts the position left behind
    await other.step()
    assert other.status is WorkerStatus.HOLD and other.symbol == "005930"
    lk = await row(admin_pool, "SELECT worker_id FROM trade.symbol_locks WHERE symbol = '005930'")
    assert lk["worker_id"] == other.worker_id
    assert (await row(admin_pool, "SELECT worker_id FROM trade.position_state"))["worker_id"] == other.worker_id
    # the dead worker, should it wake up, finds out and stops
    await dead.heartbeat()
    assert w.lost
    with pytest.raises(Exception, match="w1"):
        await w.step()
    await live.stop()


def _wait(cond: Any, timeout: float = 20.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError("timed out")


async def test_sc009_kill_9_of_a_strategy_process_is_detected_by_another(
        db: TestDb, strategy_pool: Pool, admin_pool: Pool, clock: ManualClock, tmp_path: Path) -> None:
    """A real ``stock-manager run strategy`` process, killed with SIGKILL while holding a lock."""
    log = tmp_path / "strategy.log"
    env = {**os.environ, "DATABASE_URL": db.admin_url, "SM_MODE": "paper", "SM_INSTANCE_ID": "killme",
           "SM_STRATEGY_WORKERS": "2", "SM_STRATEGY_HEARTBEAT_S": "0.5", "SM_HEARTBEAT_S": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "stock_manager", "run", "strategy"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def registered() -> list[str]:
            with psycopg.connect(db.admin_url) as c:
                ids = [r[0] for r in c.execute("SELECT worker_id FROM trade.workers WHERE instance_id = 'killme'"
                                               " AND status <> 'EXIT'").fetchall()]
                return ids if len(ids) == 2 else []

        ids = await asyncio.to_thread(_wait, registered)
        await asyncio.sleep(1.5)  # past its first loops
        async with admin_pool.connection() as conn:  # the worker holds a symbol
            await conn.execute("INSERT INTO trade.symbol_locks (symbol, worker_id, ttl_s, expires_ts)"
                               " VALUES ('005930', %s, 600, now() + interval '10 minutes')", (ids[0],))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "strategy settings loaded" in text and "daily_loss_limit" in text
    assert "[WorkerStarted]" in text and f"pid {proc.pid}" in text
    live = make_app(strategy_pool, clock, instance="survivor", worker_ttl_s=2)
    await asyncio.sleep(2.5)
    assert await live.reap() == 2
    assert await rows(admin_pool, "SELECT * FROM trade.symbol_locks") == []
    st = await rows(admin_pool, "SELECT status FROM trade.workers WHERE instance_id = 'killme'")
    assert [s["status"] for s in st] == ["EXIT", "EXIT"]
    async with admin_pool.connection() as conn:
        (rel,) = [e for e in await events(conn, "LockReleased") if e["worker_id"] == ids[0]]
        assert rel["symbol"] == "005930"
        assert len(await events(conn, "WorkerFailed")) == 2


async def test_ec001_a_timing_out_poll_is_retried_with_backoff(strategy_pool: Pool, admin_pool: Pool,
                                                               clock: ManualClock,
                                                               logs: list[dict[str, Any]]) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="up")
    app = make_app(strategy_pool, clock)
    (w,) = await to_scan(app)
    calls = {"n": 0}
    real = app.scanner

    async def flaky(now: Any, p: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= 2:  # a real statement timeout in the database, twice
            async with strategy_pool.connection() as conn:
                await conn.execute("SET LOCAL statement_timeout = 50")
                await conn.execute("SELECT pg_sleep(1)")
        return await real.fetch_rows(now, p)

    app.scanner = Scanner(app.rt, fetch=flaky, retry_delay_s=0.01)
    w.scanner = app.scanner
    res = await app.scanner.run_once()
    assert calls["n"] == 3 and res.outcome.signals == 1
    assert logged(logs, "ERROR", "universe read failed (QueryCanceled", "retry 1/3")
    assert logged(logs, "ERROR", "retry 2/3")

    async def dead(now: Any, p: Any) -> Any:
        raise TimeoutError("broker poll timed out")

    app.scanner = Scanner(app.rt, fetch=dead, retry_delay_s=0.01)
    w.scanner = app.scanner
    with pytest.raises(ScanError):
        await app.scanner.run_once()
    assert logged(logs, "ERROR", "retry 3/3") and logged(logs, "ERROR", "failed after 3 retries")
    await app._guard("scan", app.scan_if_due)  # the loop survives it
    await w.step()
    assert w.status is WorkerStatus.SCAN  # and the worker waits in SCAN for the next poll
    r = await row(admin_pool, "SELECT status FROM trade.workers WHERE worker_id = %s", w.worker_id)
    assert r["status"] == "SCAN"
    await app.stop()


async def _fills(admin_pool: Pool, symbol: str, side: str, qty: int, key: str) -> None:
    async with admin_pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type)"
            " VALUES (%s, %s, %s, %s, %s, 'MKT') RETURNING intent_id",
            (key, symbol, side, "ENTRY" if side == "BUY" else "EXIT_FULL", qty))
        i = await cur.fetchone()
        assert i is not None
        await execute(conn, i["intent_id"], [(qty, 10_000)])


async def test_recovery_rebuilds_positions_from_fills_and_an_orphan_is_adopted(
        strategy_pool: Pool, admin_pool: Pool, clock: ManualClock, logs: list[dict[str, Any]]) -> None:
    async with admin_pool.connection() as conn:
        await add_symbol(conn, "000660", trend="flat")
        await conn.execute("INSERT INTO trade.position_state (symbol, qty, avg_price, status)"
                           " VALUES ('005930', 50, 10000, 'OPEN')")
    await _fills(admin_pool, "000660", "BUY", 10, "k1")
    app = make_app(strategy_pool, clock)
    (w,) = await to_scan(app)
    assert app.recovery is not None and app.recovery.ok
    pos = {r["symbol"]: (r["qty"], r["status"]) for r in await rows(admin_pool, "SELECT * FROM trade.position_state")}
    assert pos == {"005930": (0, "FLAT"), "000660": (10, "OPEN")}
    async with admin_pool.connection() as conn:
        (ev,) = await events(conn, "PositionRecovered")
    assert ev["level"] == "WARN" and {r["symbol"] for r in ev["data"]["repaired"]} == {"005930", "000660"}
    assert (await row(admin_pool, "SELECT state FROM trade.trading_state"))["state"] == "ACTIVE"
    await w.step()  # nobody holds 000660: adopted
    assert w.status is WorkerStatus.HOLD and w.symbol == "000660"
    async with admin_pool.connection() as conn:
        assert (await events(conn, "PositionAdopted"))[0]["symbol"] == "000660"
    await app.stop()


async def test_a_recovery_that_cannot_replay_the_fills_halts_trading(strategy_pool: Pool, admin_pool: Pool,
                                                                     clock: ManualClock) -> None:
    await _fills(admin_pool, "000660", "BUY", 5, "k1")
    await _fills(admin_pool, "000660", "SELL", 6, "k2")
    app = make_app(strategy_pool, clock)
    await app.start()
    assert app.recovery is not None and not app.recovery.ok
    st = await row(admin_pool, "SELECT state, reason FROM trade.trading_state")
    assert st["state"] == "HALTED" and st["reason"].startswith("recovery failed: 000660")
    async with admin_pool.connection() as conn:
        assert (await events(conn, "RecoveryFailed"))[0]["level"] == "ERROR"
    await app.stop()
