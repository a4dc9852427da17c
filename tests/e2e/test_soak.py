"""The whole stack as a user runs it, on an accelerated market, checked against the simulator.

- ``test_whole_day``: one whole trading day (issues #11 and #17), 09:00 until flat after the close,
  traded by a user's strategy (the docs' template, written into a temporary folder and loaded by
  path, installed nowhere) with three workers: at noon the whole stack stops and starts again
  (the simulator resumes from its data directory), at 15:19:30 a person buys a thin symbol by
  hand, so it is held through the closing auction and sold after it.  Every invariant must hold:
  the manual order is marked MANUAL, the account is flat at the broker and in the database after
  the close, Execution's position checks agree, no sell is refused for want of shares.  Every
  intent names the user's strategy and the day's parameters, and the day's report renders in
  headless Chromium with its charts loaded and Korean names drawn in a CJK font.
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
from collections.abc import Awaitable, Callable
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pytest

from stock_manager.report.build import generate
from stock_manager.shared.clock import KST, ManualClock
from stock_manager.shared.db.pool import connect
from stock_manager.soak import Result, Soak, across_seeds, day_soak, next_trading_day
from tests.report.support import probe
from tests.strategy.test_port import docs_template, write_strategy
from tests.support.pg import PgServer

# Fast enough for CI on two cores (about four minutes of wall time for the day), slow enough that
# every service keeps up: at this speed a wall second is two and a half market minutes.
CI_DAY_SPEED = 150


def _run(soak: Soak, after: Callable[[Soak], Awaitable[None]] | None = None) -> Result:
    async def go() -> Result:
        try:
            result = await soak.run()
            if after is not None:
                await after(soak)
            return result
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
def test_whole_day(pg_server: PgServer, tmp_path: Path, chromium_with_cjk: str) -> None:
    folder = tmp_path / "my-strategies"  # outside the repository, on no import path
    folder.mkdir()
    path = write_strategy(folder, docs_template(), "higher_high.py")
    soak = day_soak(pg_server.url("postgres"), speed=CI_DAY_SPEED, workers=3, log_dir=tmp_path, market_seed=11,
                    strategy=f"{path}:HigherHigh", strategy_version="higher-high-v1")
    seen: dict[str, Any] = {}

    async def after(s: Soak) -> None:
        async with await connect(s.url) as conn:
            seen["intents"] = await (await conn.execute(
                "SELECT strategy_version, params_version, intent_type, reason, count(*) AS n"
                "  FROM trade.order_intents GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")).fetchall()
            seen["report"] = await generate(conn, s.start.date(), tmp_path / "report",
                                            ManualClock(datetime.combine(s.start.date(), dtime(19), KST)))

    _assert_day(_run(soak, after))
    rows = seen["intents"]
    assert {(r["strategy_version"], r["params_version"]) for r in rows} == {
        ("higher-high-v1", "soak-higher-high-v1")}, rows
    entries = sum(r["n"] for r in rows if r["intent_type"] == "ENTRY")
    by_rule = {r["reason"] for r in rows if r["intent_type"] != "ENTRY"}
    assert entries > 0 and by_rule & {"TAKE_PROFIT", "STOP_LOSS", "TIME_EXIT"}, rows  # its own exits
    assert "FORCED_LIQUIDATION" in by_rule, rows  # and the product's close around it
    found = probe(chromium_with_cjk, seen["report"].as_uri())
    assert found["images"] and all(loaded and width > 0 for _, loaded, width in found["images"]), found["images"]
    assert found["names"] and all(n.startswith("boxed=0 ") for n in found["names"]), (
        f"Hangul drawn as boxes: {found['names']}")


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
