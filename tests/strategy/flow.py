"""Driving a StrategyApp step by step in a test."""

from __future__ import annotations

from typing import Any

from stock_manager.services.strategy.app import StrategyApp
from stock_manager.services.strategy.workers import Worker
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.trade_states import WorkerStatus
from tests.strategy.support import execute, intents


async def row(pool: Pool, sql: str, *args: Any) -> dict[str, Any]:
    async with pool.connection() as conn:
        r = await (await conn.execute(sql, args or None)).fetchone()
    assert r is not None, sql
    return dict(r)


async def rows(pool: Pool, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        return [dict(r) for r in await (await conn.execute(sql, args or None)).fetchall()]


async def to_scan(app: StrategyApp) -> list[Worker]:
    await app.start()
    for w in app.workers:
        await w.step()
        assert w.status is WorkerStatus.SCAN
    return app.workers


async def enter(app: StrategyApp, admin: Pool, w: Worker, symbol: str, price: int = 10_500,
                fills: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """Scan, let ``w`` write its entry for ``symbol``, fill it as Execution would, step to HOLD."""
    await app.scanner.run_once()
    await w.step()
    async with admin.connection() as conn:
        (i,) = await intents(conn, symbol=symbol, intent_type="ENTRY", status="NEW")
        await execute(conn, i["intent_id"], fills or [(int(i["qty"]), price)])
    await w.step()
    assert w.status is WorkerStatus.HOLD and w.symbol == symbol
    return i


async def sell(admin: Pool, symbol: str, fills: list[tuple[int, int]] | None = None, price: int = 10_000,
               **kw: Any) -> dict[str, Any]:
    """Fill the newest NEW sell intent of ``symbol``."""
    async with admin.connection() as conn:
        pending = await intents(conn, symbol=symbol, side="SELL", status="NEW")
        assert pending, f"no sell intent for {symbol}"
        i = pending[-1]
        await execute(conn, i["intent_id"], fills if fills is not None else [(int(i["qty"]), price)], **kw)
    return i
