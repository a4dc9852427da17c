"""The whole stack as a user runs it, on an accelerated market, checked against the simulator.

- ``test_accelerated_day``: the simulator clock at 60x from 14:30 KST through the close — several
  workers trade, the forced liquidation flattens everything, no lock remains, the daily summary
  equals what the simulator's fills imply, and no symbol is ever held by two workers.
- ``test_soak_with_faults_and_kills``: the same with simulator faults on and each service
  SIGKILLed in turn (the supervisor restarts it); every invariant must still hold.

Longer on demand: ``python -m stock_manager.soak --minutes 120 --start 13:30``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stock_manager.soak import Soak, next_weekday
from tests.support.pg import PgServer


def _run(pg_server: PgServer, tmp_path: Path, **kw: object) -> None:
    soak = Soak(pg_server.url("postgres"), start=next_weekday("14:30"), log_dir=tmp_path, seed=3,
                **kw)  # type: ignore[arg-type]

    async def go() -> None:
        try:
            result = await soak.run()
        finally:
            await soak.drop_db()
        print(result.render())
        assert result.ok, result.render()
        assert result.stats["broker fills"] > 0, "nothing traded:\n" + result.render()

    asyncio.run(go())


@pytest.mark.timeout(400)
def test_accelerated_day(pg_server: PgServer, tmp_path: Path) -> None:
    _run(pg_server, tmp_path, minutes=62, speed=60, kill_every_s=0, faults=False, workers=3)


@pytest.mark.timeout(400)
def test_soak_with_faults_and_kills(pg_server: PgServer, tmp_path: Path) -> None:
    _run(pg_server, tmp_path, minutes=62, speed=60, kill_every_s=12, faults=True, workers=3)
