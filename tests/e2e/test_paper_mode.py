"""Paper mode end to end (issue #18 item 7): the real services with ``SM_MODE=paper`` against
``kis-sim --env paper``, on an accelerated market.

Paper KIS differs from real KIS where it hurts: 2 requests/s per app key, V-prefixed TR ids, no
volume ranking (MCA00124), and a symbol master that comes from KIS's download host rather than
the gateway.  Here PriceSync reads the master from the simulator (``SM_PRICESYNC_MASTER_URLS``)
and every service follows the simulator's market clock (``SM_SIM_CLOCK``), so nothing is seeded
behind the services' backs: the universe, the scan, the intents, the orders and the reconciling are
all theirs.  The soak's invariants then hold as in sim mode, and the simulator's own counters show
the budget was kept and every account TR id was a paper one.

On the simulator's seeded universe in CI (about three minutes); on the shares of KIS's real master
files (``kis-sim --master``, from ``shared/kis-samples/master`` beside the repository) on demand:
``pytest -m slow tests/e2e/test_paper_mode.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg.rows import dict_row

from stock_manager.shared.kis.rest import CHK_HOLIDAY_TR
from stock_manager.soak import Result, Soak, next_trading_day
from stock_manager.supervisor import ChildSpec
from tests.support.pg import PgServer

MASTER = Path(__file__).resolve().parents[2].parent / "shared" / "kis-samples" / "master"
SPEED = 30  # market seconds per wall second: 2 requests/s is 2 per 30 market seconds
MINUTES = 75  # market minutes from 10:00


class PaperSoak(Soak):
    """The soak's stack and invariants, in paper mode: the simulator's paper gateway, services in
    ``SM_MODE=paper`` with paper credentials, and no symbols seeded (PriceSync loads its master)."""

    sim_stats: dict[str, Any]  # GET /sim/stats at the end
    master_dir: Path | None = None  # kis-sim --master: the universe from real master files

    def env(self) -> dict[str, str]:
        master = ",".join(f"{self.sim_url}/sim/master/{n}" for n in ("kospi_code.mst.zip", "kosdaq_code.mst.zip"))
        return {**super().env(), "SM_MODE": "paper", "SM_SIM_CLOCK": "1", "KIS_APP_SECRET": "paper-" + self.app_key,
                "KIS_HTS_ID": "paperuser", "SM_PRICESYNC_MASTER_URLS": master}

    def specs(self) -> list[ChildSpec]:
        sim, *services = super().specs()
        master = ["--master", str(self.master_dir)] if self.master_dir is not None else []
        return [replace(sim, argv=[*sim.argv, "--env", "paper", *master]), *services]

    async def check(self) -> Result:
        """The soak's invariants, and the gateway's counters while the simulator still runs."""
        result = await super().check()
        self.sim_stats = (await self.http.get("/sim/stats")).json()
        return result

    async def seed(self) -> None:
        """The soak's day (its parameters) without its symbols: PriceSync must load its own master."""
        await super().seed()
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute("DELETE FROM market.symbols")


async def _one(url: str, sql: LiteralString) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        row = await (await conn.execute(sql)).fetchone()
    assert row is not None
    return row


async def _session(soak: PaperSoak) -> tuple[Result, dict[str, Any], dict[str, Any], float]:
    t0 = time.monotonic()
    try:
        result = await soak.run()
        return result, soak.sim_stats, await _one(soak.url, CHECKS), time.monotonic() - t0
    finally:
        await soak.drop_db()


CHECKS = """
SELECT (SELECT count(*) FROM market.symbols) AS symbols,
       (SELECT count(*) FROM market.symbols WHERE halted) AS halted,
       (SELECT count(*) FROM trade.candidates) AS candidates,
       (SELECT count(*) FROM trade.order_intents) AS intents,
       (SELECT count(*) FROM trade.fills) AS fills,
       (SELECT count(*) FROM trade.position_checks) AS position_checks,
       (SELECT count(*) FROM trade.position_checks WHERE verdict = 'AGREE') AS agree,
       (SELECT count(*) FROM ops.events WHERE kind = 'SymbolMasterLoaded') AS master_loaded
"""


def _paper_session(pg_server: PgServer, log_dir: Path, master_dir: Path | None) -> dict[str, Any]:
    """A paper session from 10:00 with the soak's invariants and the paper checks; the database's counts."""
    soak = PaperSoak(pg_server.url("postgres"), start=next_trading_day("10:00"), minutes=MINUTES, speed=SPEED,
                     kill_every_s=0, faults=False, workers=3, seed=5, log_dir=log_dir)
    soak.master_dir = master_dir
    result, stats, db, wall_s = asyncio.run(_session(soak))
    print(result.render())
    print(f"simulator: {stats}\ndatabase: {db}\nwall time: {wall_s:.0f}s")
    assert result.ok, result.render()
    assert db["master_loaded"] >= 1 and db["symbols"] >= 2000 and db["halted"] >= 1, db
    assert db["candidates"] > 0 and db["intents"] > 0, f"nothing scanned or intended: {db}"
    assert result.stats["broker fills"] > 0 and db["fills"] > 0, "nothing traded:\n" + result.render()
    assert db["agree"] > 0, f"the reconciler never agreed with the broker: {db}"
    trs: dict[str, int] = stats["tr_ids"]
    # KIS's paper rule: a TR id starting T, J or C starts V instead; chk-holiday has no paper twin
    real_ids = sorted(tr for tr in trs if tr[:1] in ("T", "J", "C") and tr != CHK_HOLIDAY_TR)
    assert not real_ids, f"real TR ids sent to the paper gateway: {real_ids}"
    assert trs.get("VTTC0012U", 0) > 0 and trs.get("VTTC0011U", 0) > 0, trs  # bought and sold
    assert trs.get("VTTC0081R", 0) > 0, trs  # the reconciler read the day's orders
    # volume-rank asked once, chk-holiday once: each refused, and neither asked again
    assert trs.get("FHPST01710000") == 1 and trs.get(CHK_HOLIDAY_TR, 0) <= 1, trs
    # the services share the 2/s budget; the simulator answers EGW00201 when a second holds a third
    # request, which arrival jitter can make happen now and then: the client retries each one
    assert stats["rate_limited"] <= max(3, stats["requests"] // 50), stats
    return db


@pytest.mark.timeout(420)
def test_paper_session_scans_trades_and_reconciles(pg_server: PgServer, tmp_path: Path) -> None:
    _paper_session(pg_server, tmp_path, None)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_paper_session_on_the_real_master_files(pg_server: PgServer, tmp_path: Path) -> None:
    """The same on the shares of KIS's real master files (``kis-sim --master``); on demand (-m slow)."""
    if not MASTER.is_dir():
        pytest.skip(f"real KIS master files not found at {MASTER} (shared/kis-samples/master beside the repo)")
    db = _paper_session(pg_server, tmp_path, MASTER)
    assert db["symbols"] == 2717 and db["halted"] == 112, db  # the files' listed shares, halts as they say
