"""One read of the ``monitor.*`` views: what ``status``, the dashboard and ``/metrics`` all show.

A snapshot is plain JSON-ready data (numbers, strings, lists), so the terminal screen, the web page
and ``status --json`` are three renderings of the same thing.  It is read in one REPEATABLE READ
transaction, so its parts agree with each other.  Connect as ``sm_readonly``: nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from stock_manager.shared.resources import package_path
from stock_manager.shared.sql import load_queries

Q = load_queries(package_path(__package__, "sql", "monitor.sql"))

LIMITS = {"price_watched": 50, "open_intents": 20, "open_orders": 30, "fills_today": 30, "corrections": 10,
          "recent_events": 40, "recent_alerts": 10}


def jsonable(value: Any) -> Any:
    """Decimals become numbers (display only), times ISO 8601 strings, UUIDs strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


async def _rows(conn: AsyncConnection[DictRow], name: str, **params: Any) -> list[dict[str, Any]]:
    cur = await conn.execute(Q[name], params or None)
    return [dict(r) for r in await cur.fetchall()]


async def _row(conn: AsyncConnection[DictRow], name: str, **params: Any) -> dict[str, Any]:
    rows = await _rows(conn, name, **params)
    return rows[0] if rows else {}


async def snapshot(conn: AsyncConnection[DictRow]) -> dict[str, Any]:
    """Everything the screens show, from one consistent view of the database."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snap: dict[str, Any] = {
            "generated_ts": dt.datetime.now(dt.UTC),
            "trading_state": await _row(conn, "trading_state"),
            "services": await _rows(conn, "services"),
            "instances": await _rows(conn, "instances"),
            "prices": await _row(conn, "price_freshness"),
            "price_watched": await _rows(conn, "price_watched", limit=LIMITS["price_watched"]),
            "open_intents": {**await _row(conn, "open_intents_summary"),
                             "rows": await _rows(conn, "open_intents", limit=LIMITS["open_intents"])},
            "open_orders": {**await _row(conn, "open_orders_summary"),
                            "rows": await _rows(conn, "open_orders", limit=LIMITS["open_orders"])},
            "positions": await _rows(conn, "positions"),
            "pnl": await _row(conn, "pnl_today"),
            "pnl_series": await _rows(conn, "pnl_series"),
            "fills_today": await _rows(conn, "fills_today", limit=LIMITS["fills_today"]),
            "corrections": await _rows(conn, "corrections", limit=LIMITS["corrections"]),
            "events": await _rows(conn, "recent_events", limit=LIMITS["recent_events"]),
            "latency": await _rows(conn, "latency"),
            "conditions": await _rows(conn, "alert_conditions"),
            "alerts": await _rows(conn, "recent_alerts", limit=LIMITS["recent_alerts"]),
        }
    result: dict[str, Any] = jsonable(snap)
    return result


async def metrics_data(conn: AsyncConnection[DictRow]) -> dict[str, Any]:
    """What ``/metrics`` exposes beyond a snapshot: all-time counters and per-status counts."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        data = {
            "counters": await _row(conn, "counters"),
            "orders_by_status": await _rows(conn, "open_orders_by_status"),
            "reconciliation_counts": await _rows(conn, "reconciliation_counts"),
            "alert_counts": await _rows(conn, "alert_counts"),
        }
    result: dict[str, Any] = jsonable(data)
    return result

