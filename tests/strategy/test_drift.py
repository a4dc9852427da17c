"""Strategy halts trading on Execution's DRIFT verdict, once, with the symbols in the reason."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from stock_manager.services.strategy.app import StrategyApp
from tests.strategy.support import events
from tests.support.pg import TestDb


def _check(db: TestDb, verdict: str, diffs: list[dict[str, Any]]) -> None:
    with psycopg.connect(db.url("execution"), autocommit=True) as conn:
        conn.execute("INSERT INTO trade.position_checks (verdict, symbols, diffs) VALUES (%s, %s, %s)",
                     (verdict, len(diffs), Jsonb(diffs)))


def _state(db: TestDb) -> tuple[str, str | None]:
    with psycopg.connect(db.admin_url) as conn:
        row = conn.execute("SELECT state, reason FROM trade.trading_state WHERE id = 1").fetchone()
    assert row is not None
    return row[0], row[1]


async def test_drift_halts_trading_and_a_mismatch_does_not(db: TestDb, app: StrategyApp) -> None:
    _check(db, "AGREE", [])
    assert not await app.drift.round()
    _check(db, "MISMATCH", [{"symbol": "005930", "broker_qty": 10, "our_qty": 7}])
    assert not await app.drift.round()
    assert _state(db)[0] == "ACTIVE"

    _check(db, "DRIFT", [{"symbol": "005930", "broker_qty": 10, "our_qty": 7}])
    assert await app.drift.round()
    state, reason = _state(db)
    assert state == "HALTED"
    assert reason == "POSITION_DRIFT: 005930 broker 10 / ours 7"
    async with app.rt.pool.connection() as conn:
        halted = await events(conn, "TradingHalted")
    assert len(halted) == 1 and halted[0]["level"] == "ERROR"
    assert not await app.drift.round()  # the same verdict is acted on once
