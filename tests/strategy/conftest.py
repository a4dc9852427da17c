from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from loguru import logger

from stock_manager.services.strategy.app import StrategyApp
from stock_manager.services.strategy.config import load_config
from stock_manager.shared.clock import ManualClock
from stock_manager.shared.db.pool import Pool, open_pool
from tests.execution.conftest import sim as sim  # the simulator and Execution as real processes,
from tests.execution.conftest import stack as stack  # for the close end to end (test_close_with_sim.py)
from tests.strategy.support import T0
from tests.support.pg import TestDb


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """Every loguru record while the test runs (level name, message, extra)."""
    records: list[dict[str, Any]] = []
    sink_id = logger.add(lambda m: records.append({"level": m.record["level"].name, "message": m.record["message"]}),
                         level="DEBUG")
    yield records
    logger.remove(sink_id)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def strategy_pool(db: TestDb) -> AsyncIterator[Pool]:
    pool = await open_pool(db.url("strategy"), max_size=6, name="strategy-test")
    try:
        yield pool
    finally:
        await pool.close()


def make_app(pool: Pool, clock: ManualClock, instance: str = "t1", **cfg: Any) -> StrategyApp:
    base: dict[str, Any] = {"workers": 1, "intent_timeout_s": 5.0, "min_wall_interval_s": 0.0,
                            "monitor_event_every_s": 60.0}
    base.update(cfg)
    return StrategyApp(pool, clock, load_config(**base), instance)


@pytest.fixture
async def app(strategy_pool: Pool, clock: ManualClock) -> AsyncIterator[StrategyApp]:
    a = make_app(strategy_pool, clock)
    yield a
    await a.stop()
