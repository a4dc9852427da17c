from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.pg import TestDb
from tests.support.sim import ServiceProcess, SimProcess, seed_symbols, service_env

SYMBOLS = ["005930", "000660", "035420", "035720", "068270", "247540"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    s = SimProcess(log_dir=tmp_path_factory.mktemp("sim")).start()
    s.clock()
    try:
        yield s
    finally:
        s.stop()


class Stack:
    """One test's world: its database, its own broker account on the shared simulator, processes."""

    def __init__(self, db: TestDb, sim: SimProcess, log_dir: Path) -> None:
        self.db = db
        self.sim = sim
        self.log_dir = log_dir
        self.account = f"{uuid.uuid4().int % 10**8:08d}-01"
        self.app_key = "PS" + uuid.uuid4().hex + "0000"
        self.procs: list[ServiceProcess] = []
        seed_symbols(db.admin_url, SYMBOLS)

    def env(self, **extra: str) -> dict[str, str]:
        return service_env(self.db.admin_url, self.sim, KIS_APP_KEY=self.app_key, KIS_ACCOUNT=self.account,
                           SM_EXEC_RECONCILE_S="1", SM_EXEC_RECONCILE_FAST_S="1", SM_EXEC_POLL_S="0.5", **extra)

    def start(self, name: str = "execution", **extra: str) -> ServiceProcess:
        p = ServiceProcess(name, self.env(**extra), self.log_dir).start()
        self.procs.append(p)
        return p

    def sql(self, query: str, params: Any = None, role: str | None = None) -> list[dict[str, Any]]:
        url = self.db.url(role) if role else self.db.admin_url
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def intent(self, key: str, symbol: str, side: str, qty: int, order_type: str = "MKT",
               limit_price: int | None = None, intent_type: str | None = None) -> str:
        it = intent_type or ("ENTRY" if side == "BUY" else "EXIT_FULL")
        row = self.sql(
            "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING intent_id",
            (key, symbol, side, it, qty, order_type, limit_price), role="strategy")
        return str(row[0]["intent_id"])

    def broker_orders(self) -> list[dict[str, Any]]:
        return [o for o in self.sim.orders() if o.get("account") == self.account]

    def broker_fills(self) -> list[dict[str, Any]]:
        return [f for f in self.sim.fills() if f.get("account") == self.account]

    def wait(self, cond: Callable[[], Any], within: float = 30, what: str = "condition") -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            value = cond()
            if value:
                return value
            for p in self.procs:
                if p.proc is not None and p.proc.poll() is not None and p.proc.returncode not in (0, -9, -15):
                    pytest.fail(f"{p.name} died ({p.proc.returncode}):\n{p.log()[-3000:]}")
            time.sleep(0.2)
        logs = "\n".join(p.log()[-2000:] for p in self.procs)
        pytest.fail(f"timed out waiting for {what}\n{logs}")

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


@pytest.fixture
def stack(db: TestDb, sim: SimProcess, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(db, sim, tmp_path)
    try:
        yield s
    finally:
        s.stop()
