"""The wheel as a user gets it: build it, install it into a fresh venv outside the repository, and run
``stock-manager up`` from an empty folder until every service heartbeats (issue #16's acceptance).

``python scripts/wheel_smoke.py`` prints what it did and exits 0, or 1 saying what failed.  It needs
the ``build`` package (in the dev extras) and network access to the package index for the wheel's
dependencies, as any install does.  CI runs it after the tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"pricesync", "strategy", "execution"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(cmd: list[str], **kw: object) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]  # noqa: S603


def beating(url: str) -> set[str]:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            rows = conn.execute("SELECT service FROM ops.heartbeats WHERE status = 'RUNNING'"
                                " AND beat_ts > clock_timestamp() - interval '15 seconds'").fetchall()
    except psycopg.Error:
        return set()
    return {r[0] for r in rows}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sm-wheel-") as tmp_dir:
        tmp = Path(tmp_dir)
        run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp / "dist"), str(ROOT)],
            stdout=subprocess.DEVNULL)
        wheel = next((tmp / "dist").glob("stock_manager-*.whl"))
        venv = tmp / "venv"
        run([sys.executable, "-m", "venv", str(venv)])
        bindir = venv / ("Scripts" if os.name == "nt" else "bin")
        run([str(bindir / "python"), "-m", "pip", "install", "--quiet", str(wheel)])
        names = subprocess.run([str(bindir / "python"), "-c",  # noqa: S603
                                "import importlib.util as u; print([n for n in ('services', 'shared', 'db')"
                                " if u.find_spec(n)])"], check=True, capture_output=True, text=True).stdout.strip()
        if names != "[]":
            print(f"FAIL: the wheel installs top-level modules {names}", file=sys.stderr)
            return 1
        work = tmp / "empty"
        work.mkdir()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "SM_", "DATABASE_URL", "VIRTUAL_ENV"))}
        env.update(KIS_REST_URL=f"http://127.0.0.1:{port}", KIS_WS_URL=f"ws://127.0.0.1:{port}",
                   SM_DASHBOARD_ADDR=f"127.0.0.1:{free_port()}", SM_HEARTBEAT_S="1")
        print(f"$ cd {work} && stock-manager up --no-status", flush=True)
        proc = subprocess.Popen([str(bindir / "stock-manager"), "up", "--no-status"], cwd=work, env=env,  # noqa: S603
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"host={work / '.stock-manager' / 'pgdata'} dbname=stock_manager user=postgres"
        started = time.monotonic()
        try:
            while time.monotonic() - started < 180:
                if proc.poll() is not None:
                    print(f"FAIL: up exited with {proc.returncode}", file=sys.stderr)
                    return 1
                if beating(url) >= SERVICES:
                    print(f"every service heartbeats after {time.monotonic() - started:.1f} s: "
                          f"{', '.join(sorted(SERVICES))}")
                    break
                time.sleep(0.5)
            else:
                print(f"FAIL: after 180 s only {sorted(beating(url))} heartbeat", file=sys.stderr)
                return 1
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = -9
        if code != 0:
            print(f"FAIL: up did not stop cleanly on Ctrl-C (exit {code})", file=sys.stderr)
            return 1
        print("wheel smoke test passed: built, installed outside the repository, up from an empty folder")
        return 0


if __name__ == "__main__":
    sys.exit(main())
