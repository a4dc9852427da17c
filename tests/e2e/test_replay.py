"""Recorded days through the real services (issue #14), with ``stock-manager replay``'s own code.

- ``test_replay_of_the_shipped_day``: the small recorded-format day that ships with the tests
  (tests/data/synthetic-day.smday, made by ``kis_sim.make_day`` from the synthetic market) replayed
  whole, 09:00 until flat after the close: the simulator plays it as its market, the three services
  run unchanged, the soak's invariants hold, the prints PriceSync stored are the recorded ones at
  their recorded times, the round trips are written and the day report is drawn.
- ``test_a_recorded_paper_day_replays_twice`` (slow): the acceptance.  A paper session against the
  simulator (``SM_MODE=paper``: PriceSync records books, quotes, the master and designations) is
  exported with ``stock-manager export-day``, imported into a fresh database with ``import-day``
  and exported again (the two files' tables are equal), then replayed twice at 60x; the two
  replays' round trips are compared and what differs is printed.

``pytest -m slow tests/e2e/test_replay.py`` runs the second; CI runs the first.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from stock_manager.replay import Replayed, agreement, render, replay_soak, run_replay
from stock_manager.shared.clock import kst
from stock_manager.shared.dayfile import read_day
from stock_manager.soak import SOAK_PARAMS, next_trading_day
from tests.e2e.test_paper_mode import MINUTES, SPEED, PaperSoak
from tests.support.pg import PgServer

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "synthetic-day.smday"
CI_SPEED = 150  # as the whole-day soak: every service keeps up on two cores
ACCEPTANCE_SPEED = 60


def _replay(path: Path, pg_server: PgServer, out: Path, speed: float,
            inspect: Any = None) -> Replayed:
    soak = replay_soak(path, pg_server.url("postgres"), speed=speed, log_dir=out / "logs", params=SOAK_PARAMS,
                       strategy_version="breakout-v1")

    async def go() -> Replayed:
        done = await run_replay(soak, out, keep=inspect is not None)
        try:
            if inspect is not None:
                await inspect(soak.url)
        finally:
            if inspect is not None:
                await soak.drop_db()
        return done

    done = asyncio.run(go())
    print(render(done))
    return done


@pytest.mark.timeout(600)
def test_replay_of_the_shipped_day(pg_server: PgServer, tmp_path: Path) -> None:
    if not SHIPPED.exists():
        pytest.fail(f"{SHIPPED} is missing: python -m stock_manager.services.kis_sim.make_day makes it")
    day = read_day(SHIPPED)
    # H0STCNT0 carries a print's time to the second (STCK_CNTG_HOUR, HHMMSS)
    recorded = {(r["symbol"], r["ts"].replace(microsecond=0), r["price"], r["qty"])
                for r in day["trades"].to_pylist()}
    stored: list[dict[str, Any]] = []

    async def inspect(url: str) -> None:
        async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
            stored.extend(await (await conn.execute(
                "SELECT symbol, ts, price, qty FROM market.ticks WHERE source = 'WS' AND qty > 0")).fetchall())

    done = _replay(SHIPPED, pg_server, tmp_path / "replay", CI_SPEED, inspect)
    assert done.result.ok, done.result.render()
    assert done.trade_date == day.trade_date
    # every print PriceSync stored is a recorded one: same symbol, market second, price and quantity
    assert stored, "PriceSync stored no WebSocket prints"
    foreign = [t for t in stored if (t["symbol"], t["ts"], int(t["price"]), int(t["qty"])) not in recorded]
    assert not foreign, f"{len(foreign)} of {len(stored)} stored prints are not in the recording: {foreign[:3]}"
    assert done.trips, "nothing traded on the replayed day:\n" + done.result.render()
    trips = json.loads((tmp_path / "replay" / "round-trips.json").read_text(encoding="utf-8"))
    assert len(trips) == len(done.trips) and {t["symbol"] for t in trips} <= {s for s, *_ in recorded} | {
        r["symbol"] for r in day["symbols"].to_pylist()}
    assert all(kst(datetime.fromisoformat(t["exit_ts"])).date() == day.trade_date for t in trips)
    assert done.report is not None and done.report.exists()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stock_manager", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300, check=False)


class RecordingPaperSoak(PaperSoak):
    """The paper session of test_paper_mode, exporting the recorded day before its database goes."""

    out: Path

    def env(self) -> dict[str, str]:
        # order books of held positions take WebSocket registrations only when slots are given to them
        return {**super().env(), "SM_PRICESYNC_ORDERBOOK_SLOTS": "6"}

    async def check(self) -> Any:
        result = await super().check()
        d = self.start.date().isoformat()
        r = await asyncio.to_thread(_cli, "export-day", d, "--out", str(self.out), env={"DATABASE_URL": self.url})
        assert r.returncode == 0, r.stderr
        print(r.stdout.strip())
        return result


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_recorded_paper_day_replays_twice(pg_server: PgServer, tmp_path: Path) -> None:
    # 1. record: a paper session against the simulator, then export-day
    recorded = tmp_path / "recorded.smday"
    soak = RecordingPaperSoak(pg_server.url("postgres"), start=next_trading_day("10:00"), minutes=MINUTES,
                              speed=SPEED, kill_every_s=0, faults=False, workers=3, seed=5, log_dir=tmp_path / "rec")
    soak.out = recorded

    async def record() -> Any:
        try:
            return await soak.run()
        finally:
            await soak.drop_db()

    result = asyncio.run(record())
    assert result.ok, result.render()
    day = read_day(recorded)
    counts = day.counts()
    print(f"recorded: {counts}")
    assert counts["symbols"] >= 2000 and counts["quotes"] > 0 and counts["trades"] > 0 and counts["books"] > 0, counts

    # 2. import it into a fresh database and export it again: the same tables
    db = f"sm_import_{os.getpid()}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        env = {"DATABASE_URL": pg_server.url(db)}
        assert _cli("migrate", env=env).returncode == 0
        r = _cli("import-day", str(recorded), env=env)
        assert r.returncode == 0, r.stderr
        again = tmp_path / "again.smday"
        r = _cli("export-day", day.trade_date.isoformat(), "--out", str(again), env=env)
        assert r.returncode == 0, r.stderr
    finally:
        with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    day2 = read_day(again)
    for name in ("symbols", "trades", "books", "quotes", "events"):
        assert day2[name].equals(day[name]), f"table {name} changed through import and export"

    # 3. replay it twice at 60x: the same round trips, or the difference measured
    first = _replay(again, pg_server, tmp_path / "replay-1", ACCEPTANCE_SPEED)
    second = _replay(again, pg_server, tmp_path / "replay-2", ACCEPTANCE_SPEED)
    assert first.result.ok, first.result.render()
    assert second.result.ok, second.result.render()
    # the market the two saw is the same (the simulator draws nothing from time); the services run on
    # wall time, so when an order reaches it differs (docs/replay.md, "Determinism"): measured here
    alike = agreement(first.trips, second.trips)
    print("two replays of one recorded day:\n" + "\n".join(f"  {k}: {v}" for k, v in alike.items()))
    assert first.trips and second.trips, "a replayed day traded nothing"
    symbols_a, symbols_b = {t["symbol"] for t in first.trips}, {t["symbol"] for t in second.trips}
    assert symbols_a & symbols_b, f"the two replays traded no symbol in common: {alike}"
