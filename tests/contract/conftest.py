"""One simulator process per environment for the whole contract suite; a clean market per test.

Every test gets a reset simulator (no orders, default limits, no faults) with its clock at Monday
2026-11-23 10:00 KST (continuous session), a fresh migrated database for the PostgreSQL-backed
ports, and its own app key and account, so no test sees another's token, rate window or cash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from stock_manager.shared.db.pool import open_pool
from stock_manager.shared.kis.endpoints import KisEnv
from tests.contract.support import Harness
from tests.support.pg import TestDb
from tests.support.sim import MONDAY_10AM, SimProcess


def _start(env: str, factory: pytest.TempPathFactory) -> SimProcess:
    return SimProcess(env, log_dir=factory.mktemp(f"kis-sim-{env}")).start()


@pytest.fixture(scope="session")
def real_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    sim = _start("real", tmp_path_factory)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="session")
def paper_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    sim = _start("paper", tmp_path_factory)
    try:
        yield sim
    finally:
        sim.stop()


def _fresh(sim: SimProcess) -> None:
    sim.http.post("/sim/reset").raise_for_status()
    sim.clock(MONDAY_10AM, speed=1.0)
    # the gateway's wall clock (tokens) back to the real time, whatever an earlier test did to it
    sim.http.post("/sim/wall", json={"at": datetime.now(UTC).isoformat(), "speed": 1.0}).raise_for_status()


@pytest.fixture
async def h(db: TestDb, real_sim: SimProcess) -> AsyncIterator[Harness]:
    """The real (실전) environment: KIS's 20 requests/s enforced by the simulator and by the
    adapter's PgRateLimiter, as in production."""
    _fresh(real_sim)
    pool = await open_pool(db.url("execution"), max_size=10)
    harness = Harness(real_sim, db, pool, KisEnv.REAL, rate_limit=20)
    try:
        yield harness
    finally:
        await harness.aclose()
        await pool.close()
        real_sim.http.post("/sim/reset").raise_for_status()


@pytest.fixture
async def ph(db: TestDb, paper_sim: SimProcess) -> AsyncIterator[Harness]:
    """The paper (모의) environment with its 2 requests/s switched off: paging through 30+ orders
    at 2/s would take most of the suite's time budget, and the limit is tested on real."""
    _fresh(paper_sim)
    paper_sim.faults(rate_limit_per_s=0)
    pool = await open_pool(db.url("execution"), max_size=10)
    harness = Harness(paper_sim, db, pool, KisEnv.PAPER, rate_limit=None)
    try:
        yield harness
    finally:
        await harness.aclose()
        await pool.close()
        paper_sim.http.post("/sim/reset").raise_for_status()
