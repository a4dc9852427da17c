"""``stock-manager up`` as a user runs it: real processes, real database, real simulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.pg import TestDb

SERVICES = ("pricesync", "strategy", "execution")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _beats(url: str) -> dict[str, dict[str, Any]]:
    try:
        with psycopg.connect(url, row_factory=dict_row, connect_timeout=3) as conn:
            rows = conn.execute(
                "SELECT service, pid, status, extract(epoch FROM clock_timestamp() - beat_ts) AS age "
                "FROM ops.heartbeats"
            ).fetchall()
    except psycopg.Error:
        return {}
    return {r["service"]: r for r in rows if r["status"] == "RUNNING" and r["age"] < 15}


def _wait(cond: Callable[[], Any], within: float, what: str, proc: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        assert proc.poll() is None, f"up exited early with {proc.returncode}"
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _start_up(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    with (cwd / "up.err").open("wb") as err:  # the supervisor's notes
        return subprocess.Popen(
            [sys.executable, "-m", "stock_manager", "up", "--no-status"],
            env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err,
        )


def _nobody_killed(cwd: Path) -> None:
    """Every child, simulator and dashboard included, stopped by the stop protocol within the grace."""
    notes = (cwd / "up.err").read_text(encoding="utf-8", errors="replace")
    assert "killing it" not in notes, notes[-2000:]


def _stop_up(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "SM_", "DATABASE_URL"))}
    env.update(KIS_REST_URL=f"http://127.0.0.1:{port}", KIS_WS_URL=f"ws://127.0.0.1:{port}",
               SM_HEARTBEAT_S="1", SM_DASHBOARD_ADDR=f"127.0.0.1:{_free_port()}", **extra)
    return env


def test_kill_9_of_one_service_restarts_it_and_the_others_never_stop(db: TestDb, tmp_path: Path) -> None:
    proc = _start_up(_env(tmp_path, DATABASE_URL=db.admin_url), tmp_path)
    try:
        beats = _wait(lambda: (b := _beats(db.admin_url)) and set(SERVICES) <= set(b) and b, 60,
                      "all services to heartbeat", proc)
        pids = {s: beats[s]["pid"] for s in SERVICES}
        os.kill(pids["execution"], signal.SIGKILL)
        _wait(lambda: _beats(db.admin_url).get("execution", {}).get("pid") not in (None, pids["execution"]),
              60, "execution to come back with a new pid", proc)
        after = _beats(db.admin_url)
        for s in ("pricesync", "strategy"):
            assert after[s]["pid"] == pids[s], f"{s} was restarted"
            assert _alive(pids[s])
        assert not _alive(pids["execution"])
    finally:
        code = _stop_up(proc)
    assert code == 0
    time.sleep(0.5)
    final = _beats(db.admin_url)
    assert not final, f"services still running after Ctrl-C: {final}"
    for pid in pids.values():
        assert not _alive(pid)
    # each stopped itself (stdin closed, the stop protocol), none was killed after the grace
    assert _stopped_cleanly(db.admin_url, pids) == set(SERVICES)
    _nobody_killed(tmp_path)


def _stopped_cleanly(url: str, pids: dict[str, int]) -> set[str]:
    """Services whose last process recorded its own ServiceStopped."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT service, (data->>'pid')::int FROM ops.events WHERE kind = 'ServiceStopped'"
                            ).fetchall()
    stopped = {(service, pid) for service, pid in rows}
    last = {s: p for s, p in _last_pids(url).items() if s in pids}
    return {s for s, p in last.items() if (s, p) in stopped}


def _last_pids(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT service, pid FROM ops.heartbeats").fetchall()
    return {service: pid for service, pid in rows}


def test_up_on_a_fresh_checkout_uses_an_embedded_postgres(tmp_path: Path) -> None:
    proc = _start_up(_env(tmp_path), tmp_path)
    pgdata = tmp_path / ".stock-manager" / "pgdata"
    url = f"host={pgdata} dbname=stock_manager user=postgres"
    try:
        _wait(lambda: set(SERVICES) <= set(_beats(url)), 120, "heartbeats in the embedded database", proc)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM ops.schema_migrations").fetchone()
            assert row is not None and row[0] >= 6
    finally:
        assert _stop_up(proc) == 0
    assert (tmp_path / ".stock-manager" / "logs" / "execution.log").exists()
    _nobody_killed(tmp_path)
