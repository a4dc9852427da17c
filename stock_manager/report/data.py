"""The day's rows, read in one repeatable-read snapshot so the curve, the table and the totals agree."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from stock_manager.report.model import (
    Candle,
    Costs,
    Day,
    Fill,
    ParamsVersion,
    Trip,
    decision_inputs,
    figures,
)
from stock_manager.shared.clock import KST
from stock_manager.shared.resources import package_path
from stock_manager.shared.sql import load_queries

Q = load_queries(package_path(__package__, "sql", "report.sql"))
MAX_CHARTS = 30  # round trips drawn on their 1-minute chart; the rest are listed, and counted
CHART_MARGIN = timedelta(minutes=10)  # of candles either side of a trip


def bounds(d: date) -> dict[str, Any]:
    lo = datetime.combine(d, time(0), KST)
    return {"trade_date": d, "lo": lo, "hi": lo + timedelta(days=1)}


async def latest_day(conn: AsyncConnection[Any]) -> date | None:
    """The latest trading day with fills, on the KST calendar; None when nothing ever filled."""
    row = await (await conn.execute(Q["newest_fill"])).fetchone()
    ts: datetime | None = row["ts"] if row else None
    return ts.astimezone(KST).date() if ts else None


async def fingerprint(conn: AsyncConnection[Any], d: date) -> str:
    """A short value that changes whenever anything the report of ``d`` draws changes."""
    row = await (await conn.execute(Q["fingerprint"], bounds(d))).fetchone()
    assert row is not None
    return "-".join(str(v.timestamp() if isinstance(v, datetime) else v) for v in row.values())


def _fill(r: dict[str, Any]) -> Fill:
    return Fill(fill_id=int(r["fill_id"]), side=r["side"], qty=int(r["qty"]), price=r["price"], fee=r["fee"],
                tax=r["tax"], ts=r["ts"], intent_id=str(r["intent_id"]) if r["intent_id"] else None,
                intent_type=r["intent_type"], reason=r["reason"], context=r["context"] or {})


def _trip(r: dict[str, Any], fills: list[Fill]) -> Trip:
    ctx = r["entry_context"] or {}
    score = r["candidate_score"] if r["candidate_score"] is not None else ctx.get("score")
    return Trip(trip_id=int(r["trip_id"]), symbol=r["symbol"], name=r["name"], entry_ts=r["entry_ts"],
                exit_ts=r["exit_ts"], qty=int(r["qty"]), avg_entry_price=r["avg_entry_price"],
                avg_exit_price=r["avg_exit_price"], fees=r["fees"], taxes=r["taxes"], pnl=r["pnl"],
                exit_reason=r["exit_reason"], forced=bool(r["forced"]), strategy_version=r["strategy_version"],
                params_version=r["params_version"], entry_reason=r["entry_reason"],
                score=None if score is None else Decimal(str(score)),
                entry_inputs=decision_inputs({k: v for k, v in ctx.items() if k != "score"}),
                filters=r["candidate_filters"], fills=tuple(fills))


async def load_day(conn: AsyncConnection[Any], d: date, *, max_charts: int = MAX_CHARTS) -> Day:
    """Everything the report of ``d`` shows.  ``conn`` is sm_readonly's; nothing is written."""
    b = bounds(d)
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        fills: dict[int, list[Fill]] = {}
        for r in await (await conn.execute(Q["trip_fills"], b)).fetchall():
            fills.setdefault(int(r["trip_id"]), []).append(_fill(r))
        trips = tuple(_trip(r, fills.get(int(r["trip_id"]), []))
                      for r in await (await conn.execute(Q["round_trips"], b)).fetchall())
        candles: dict[int, tuple[Candle, ...]] = {}
        for t in trips[:max_charts]:
            rows = await (await conn.execute(Q["candles"], {
                "symbol": t.symbol, "lo": max(b["lo"], t.entry_ts - CHART_MARGIN),
                "hi": min(b["hi"], t.exit_ts + CHART_MARGIN)})).fetchall()
            candles[t.trip_id] = tuple(Candle(ts=c["bucket_ts"], open=c["open"], high=c["high"], low=c["low"],
                                              close=c["close"], volume=int(c["volume"])) for c in rows)
        cost_rows = await (await conn.execute(Q["costs"], b)).fetchall()
        stored = await (await conn.execute(Q["daily_summary"], b)).fetchone()
        versions = sorted({t.params_version for t in trips if t.params_version})
        params = await (await conn.execute(Q["params"], {"versions": versions})).fetchall()
    return Day(
        trade_date=d, trips=trips, candles=candles,
        costs=tuple(Costs(side=c["side"], fills=int(c["fills"]), qty=int(c["qty"]), amount=c["amount"],
                          fees=c["fees"], taxes=c["taxes"]) for c in cost_rows),
        figures=figures(trips, stored),
        params=tuple(ParamsVersion(version=p["params_version"], effective_date=p["effective_date"],
                                   strategy_version=p["strategy_version"], params=p["params"], note=p["note"])
                     for p in params),
        first_fill_ts=min((c["first_ts"] for c in cost_rows), default=None),
        last_fill_ts=max((c["last_ts"] for c in cost_rows), default=None),
        charted=min(len(trips), max_charts))
