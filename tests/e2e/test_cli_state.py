"""halt / resume / flatten: the trading state every service obeys, audited in ops.events."""

from __future__ import annotations

import subprocess
import sys

import psycopg

from tests.support.pg import TestDb
from tests.support.sim import clean_env


def _cli(db: TestDb, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stock_manager", *args], capture_output=True, text=True,
                          env=clean_env(DATABASE_URL=db.admin_url), timeout=60, check=False)


def test_halt_flatten_resume_are_audited(db: TestDb) -> None:
    for cmd, state in (("halt", "HALTED"), ("flatten", "REDUCING"), ("resume", "ACTIVE")):
        out = _cli(db, cmd, "--reason", f"test {cmd}")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"trading state: {state}"
        with psycopg.connect(db.admin_url) as conn:
            row = conn.execute("SELECT state, reason FROM trade.trading_state").fetchone()
        assert row is not None
        assert row[0] == state
    with psycopg.connect(db.admin_url) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM trade.trading_state")]
        kinds = [r[0] for r in conn.execute("SELECT kind FROM ops.events WHERE service = 'cli' ORDER BY event_id")]
    assert kinds == ["TradingHalt", "TradingFlatten", "TradingResume"]
    assert reasons == ["test resume"]


def test_flatten_reason_is_what_strategy_obeys(db: TestDb) -> None:
    from stock_manager.services.strategy.rules.liquidation import flatten_requested  # the rule Strategy applies

    assert _cli(db, "flatten").returncode == 0
    with psycopg.connect(db.admin_url) as conn:
        state, reason = conn.execute("SELECT state, reason FROM trade.trading_state").fetchone()  # type: ignore[misc]
    assert flatten_requested(state, reason)


def test_status_prints_one_screen(db: TestDb) -> None:
    out = _cli(db, "status")
    assert out.returncode == 0, out.stderr
    assert "trading state: ACTIVE" in out.stdout
    assert "open intents 0" in out.stdout


def _into_closed_pipe(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run the CLI with stdout a pipe whose reader is already gone, as `| head -0` leaves it."""
    import os

    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([sys.executable, "-m", "stock_manager", *args], stdout=w, stderr=subprocess.PIPE,
                              text=True, env=env, timeout=60, check=False)
    finally:
        os.close(w)
    return proc.returncode, proc.stderr


def test_printing_into_a_closed_pipe_ends_quietly(db: TestDb) -> None:
    env = clean_env(DATABASE_URL=db.admin_url)
    for args in (("status",), ("status", "--json"), ("--help",), ("halt",), ("resume",)):
        code, err = _into_closed_pipe(env, *args)
        assert "Traceback" not in err, (args, err)
        assert "BrokenPipeError" not in err, (args, err)
        assert err == "", (args, err)
        assert code == (0 if args == ("--help",) else 141), (args, code)  # argparse swallows its own EPIPE


def test_status_into_head_prints_its_first_lines(db: TestDb) -> None:
    cli = subprocess.Popen([sys.executable, "-m", "stock_manager", "status"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=clean_env(DATABASE_URL=db.admin_url))
    head = subprocess.run(["head", "-1"], stdin=cli.stdout, capture_output=True, text=True, timeout=60, check=True)
    assert cli.stdout is not None
    cli.stdout.close()
    _, err = cli.communicate(timeout=60)
    assert head.stdout.strip()
    assert b"Traceback" not in err
    assert cli.returncode in (0, 141)
