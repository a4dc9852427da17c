"""A service whose database is not there says so at once, in one line, and keeps waiting for it."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time

import pytest

from stock_manager.shared.db.pool import describe
from tests.support.sim import clean_env

PASSWORD = "hunter2-not-for-logs"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_for(proc: subprocess.Popen[bytes], seconds: float, until: bytes | None = None) -> bytes:
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    out = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and until in out):
        for _ in sel.select(timeout=0.1):
            out += proc.stderr.read() or b""
    return out


def test_describe_never_shows_the_password() -> None:
    assert describe(f"postgresql://bob:{PASSWORD}@db.example:6543/sm") == "bob@db.example:6543/sm"
    assert describe(f"host=10.0.0.1 user=bob password={PASSWORD} dbname=x") == "bob@10.0.0.1:5432/x"


@pytest.mark.parametrize(("service", "role"), [("strategy", "sm_strategy"), ("dashboard", "sm_readonly")])
def test_unreachable_database_is_named_at_once_and_waited_for(service: str, role: str) -> None:
    port = _closed_port()
    env = clean_env(DATABASE_URL=f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/sm", SM_MODE="sim",
                    KIS_REST_URL=f"http://127.0.0.1:{_closed_port()}", SM_DB_ROLE_PASSWORD=PASSWORD)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "stock_manager", "run", service],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        first = _read_for(proc, 15, until=b"retrying")
        took = time.monotonic() - started
        assert b"cannot reach the database at %s@127.0.0.1:%d/sm" % (role.encode(), port) in first, first
        assert b"check that PostgreSQL is running" in first
        # the interpreter's start-up is most of it; on an idle machine the line comes in ~1 s
        assert took < 6, took
        more = _read_for(proc, 4)
        assert proc.poll() is None, "it keeps waiting for the database rather than exiting"
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[1]
    text = (first + more + rest).decode()
    assert PASSWORD not in text
    assert text.count("cannot reach the database") == 1, text
    assert "pool initialization incomplete" not in text
    assert proc.returncode == 0, text


def test_one_shot_commands_name_the_database_in_one_line() -> None:
    port = _closed_port()
    env = clean_env(DATABASE_URL=f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/sm")
    for args in (("halt",), ("migrate",), ("status",)):
        out = subprocess.run([sys.executable, "-m", "stock_manager", *args], capture_output=True, text=True, env=env,
                             timeout=60, check=False)
        assert out.returncode == 1, (args, out.stderr)
        assert "Traceback" not in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)
        assert PASSWORD not in out.stderr + out.stdout
        if args != ("status",):  # status names the role it reads as
            assert f"cannot reach the database at postgres@127.0.0.1:{port}/sm" in out.stderr, out.stderr
