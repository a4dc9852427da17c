"""The whole stack as a user runs it, on an accelerated market, checked against the simulator.

- ``test_whole_day``: one whole trading day (issue #11), 09:00 until flat after the close, with
  three workers: at noon the whole stack stops and starts again (the simulator resumes from its
  data directory), at 15:19:30 a person buys a thin symbol by hand, so it is held through the
  closing auction and sold after it.  Every invariant must hold: the manual order is marked
  MANUAL, the account is flat at the broker and in the database after the close, Execution's
  position checks agree, no sell is refused for want of shares.
- ``test_soak_with_faults_and_kills``: 14:30 through the close with simulator faults on and each
  service SIGKILLed in turn (the supervisor restarts it); every invariant must still hold.
- ``test_whole_days_of_three_markets`` (slow): the whole day on three market seeds at 60x, and
  across them some symbol bought again after it was sold (re-entry after the cooldown).

The slow one runs on demand: ``pytest -m slow tests/e2e/test_soak.py``, or
``stock-manager soak --day --market-seed 1,2,3``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from stock_manager.soak import Result, Soak, across_seeds, day_soak, next_trading_day
from tests.support.pg import PgServer

# Fast enough for CI on two cores (about four minutes of wall time for the day), slow enough that
# every service keeps up: at this speed a wall second is two and a half market minutes.
CI_DAY_SPEED = 150


def _run(soak: Soak) -> Result:
    async def go() -> Result:
        try:
            return await soak.run()
        finally:
            await soak.drop_db()

    t0 = time.monotonic()
    result = asyncio.run(go())
    print(result.render())
    print(f"wall time: {time.monotonic() - t0:.0f}s")
    return result


def _assert_day(result: Result) -> None:
    assert result.ok, result.render()
    assert result.stats["broker fills"] > 0, "nothing traded:\n" + result.render()
    assert "manual order" in result.stats and "midday restart" in result.stats, result.render()


@pytest.mark.timeout(480)
def test_whole_day(pg_server: PgServer, tmp_path: Path) -> None:
    soak = day_soak(pg_server.url("postgres"), speed=CI_DAY_SPEED, workers=3, log_dir=tmp_path, market_seed=11)
    _assert_day(_run(soak))


@pytest.mark.timeout(400)
def test_soak_with_faults_and_kills(pg_server: PgServer, tmp_path: Path) -> None:
    soak = Soak(pg_server.url("postgres"), start=next_trading_day("14:30"), minutes=62, speed=60, kill_every_s=12,
                faults=True, workers=3, seed=3, log_dir=tmp_path)
    result = _run(soak)
    assert result.ok, result.render()
    assert result.stats["broker fills"] > 0, "nothing traded:\n" + result.render()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_whole_days_of_three_markets(pg_server: PgServer, tmp_path: Path) -> None:
    results: dict[int | None, Result] = {}
    for seed in (1, 2, 3):
        soak = day_soak(pg_server.url("postgres"), speed=60, workers=3, log_dir=tmp_path / f"seed-{seed}",
                        market_seed=seed)
        results[seed] = _run(soak)
    overall = across_seeds(results)
    print(overall.render())
    for market_seed, result in results.items():
        assert result.stats["broker fills"] > 0, f"seed {market_seed}: nothing traded:\n" + result.render()
    assert overall.ok, overall.render() + "\n\n" + "\n\n".join(r.render() for r in results.values())
