"""The KIS simulator as a real process on a free loopback port, and the other services likewise."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from stock_manager.services.kis_sim.universe import build_universe

MONDAY_10AM = "2026-11-23T10:00:00+09:00"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimProcess:
    def __init__(self, env: str = "real", log_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.env = env
        self._log = open(log_dir / "kis-sim.log", "ab") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def start(self) -> SimProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stock_manager", "run", "kis-sim", "--port", str(self.port), "--env", self.env],
            stdout=self._log, stderr=self._log, env=clean_env(),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.http.get("/sim/clock").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, "simulator exited"
            time.sleep(0.1)
        raise RuntimeError("simulator did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.http.close()

    def clock(self, at: str | None = MONDAY_10AM, speed: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if at:
            body["at"] = at
        if speed:
            body["speed"] = speed
        r = self.http.post("/sim/clock", json=body)
        r.raise_for_status()
        return dict(r.json())

    def faults(self, **faults: Any) -> None:
        self.http.post("/sim/faults", json=faults).raise_for_status()

    def get(self, path: str) -> Any:
        r = self.http.get(path)
        r.raise_for_status()
        return r.json()

    def orders(self) -> list[dict[str, Any]]:
        body = self.get("/sim/orders")
        return list(body["orders"] if isinstance(body, dict) else body)

    def fills(self) -> list[dict[str, Any]]:
        body = self.get("/sim/fills")
        return list(body["fills"] if isinstance(body, dict) else body)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "SM_", "DATABASE_URL"))}
    env.update(extra)
    return env


def service_env(database_url: str, sim: SimProcess, **extra: str) -> dict[str, str]:
    return clean_env(DATABASE_URL=database_url, SM_MODE="sim", KIS_REST_URL=sim.url, KIS_WS_URL=sim.ws_url,
                     SM_HEARTBEAT_S="1", **extra)


def seed_symbols(admin_url: str, codes: Iterable[str] | None = None) -> list[str]:
    """Write the simulator's symbols into market.symbols as PriceSync would."""
    from stock_manager.shared.market_rules import Market, price_limits

    universe = build_universe(20260101, 2500)
    chosen = list(codes) if codes is not None else list(universe)
    with psycopg.connect(admin_url, autocommit=True) as conn, conn.cursor() as cur:
        for code in chosen:
            s = universe[code]
            lo, hi = price_limits(s.prior_close, Market(s.market_name))
            cur.execute(
                "INSERT INTO market.symbols (symbol, name, market, base_price, upper_limit, lower_limit, prev_high,"
                " prev_low, halted) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (symbol) DO NOTHING",
                (code, s.name, s.market_name, s.prior_close, hi, lo, s.prior_high, s.prior_low, s.halted),
            )
    return chosen


class ServiceProcess:
    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen([sys.executable, "-m", "stock_manager", "run", self.name],
                                     stdout=log, stderr=log, env=self.env)
        log.close()
        return self

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
