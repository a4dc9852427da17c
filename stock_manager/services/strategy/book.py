"""The book: positions rebuilt from fills, closed round trips, the daily summary, the risk snapshot.

Fills are the truth.  A symbol whose fills changed (count or newest id) is replayed from all its
fills and ``position_state`` is overwritten with the result, so a late or re-ordered fill can never
leave a position half-applied, and recovery after a crash is the same code run for every symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from loguru import logger
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from stock_manager.services.strategy import ops
from stock_manager.services.strategy.queries import Q
from stock_manager.services.strategy.rules.exits import FORCED_REASONS
from stock_manager.services.strategy.rules.liquidation import liquidation_costs, liquidation_note
from stock_manager.services.strategy.rules.positions import FillRow, Position, fold, unrealized
from stock_manager.services.strategy.rules.risk import RiskSnapshot
from stock_manager.services.strategy.rules.summary import DailySummary, TripResult, summarize
from stock_manager.shared.clock import KST
from stock_manager.shared.locks import Lock, lock_params
from stock_manager.shared.trade_states import STATUS_SETS

ZERO = Decimal(0)


@dataclass(frozen=True)
class ClosedTrip:
    symbol: str
    trip_id: int
    trade_date: date
    pnl: Decimal
    exit_reason: str | None
    worker_id: str | None


def _fill(r: dict[str, Any]) -> FillRow:
    return FillRow(
        fill_id=int(r["fill_id"]), order_id=int(r["order_id"]), side=r["side"], qty=int(r["qty"]),
        price=r["price"], fee=r["fee"], tax=r["tax"], ts=r["ts"], intent_id=r["intent_id"], reason=r["reason"],
        worker_id=r["worker_id"], strategy_version=r["strategy_version"], params_version=r["params_version"],
        order_qty=r["order_qty"], order_filled_qty=r["order_filled_qty"],
    )


async def replay(conn: AsyncConnection[Any], symbol: str) -> Position:
    rows = await (await conn.execute(Q["fills_of_symbol"], {"symbol": symbol})).fetchall()
    refs = {r["intent_id"]: r["ref_price"] for r in rows if r["intent_id"] is not None and r["ref_price"]}
    return fold(symbol, [_fill(r) for r in rows], refs)


def _position_params(pos: Position) -> dict[str, Any]:
    trip = pos.trip
    last = pos.closed_trips[-1] if pos.closed_trips else None
    return {
        "symbol": pos.symbol,
        "qty": pos.qty,
        "avg_price": pos.avg_price.quantize(Decimal("0.0001")) if pos.avg_price is not None else None,
        "realized_pnl": (trip.realized if trip else (last.pnl if last else ZERO)).quantize(Decimal("0.01")),
        "fees": trip.fees if trip else ZERO,
        "taxes": trip.taxes if trip else ZERO,
        "high_water_price": pos.avg_price.quantize(Decimal("0.01")) if pos.avg_price is not None else None,
        "entry_price": (trip.buy_amount / trip.bought).quantize(Decimal("0.01")) if trip and trip.bought else None,
        "entry_ts": trip.entry_ts if trip else None,
        "worker_id": trip.worker_id if trip else None,
        "strategy_version": trip.strategy_version if trip else None,
        "params_version": trip.params_version if trip else None,
        "last_fill_id": pos.last_fill_id,
        "fills_count": pos.fills_count,
        "trip_first_fill_id": trip.first_fill_id if trip else None,
        "entry_intent_id": trip.entry_intent_id if trip else None,
        "status": "OPEN" if pos.qty > 0 else "FLAT",
    }


async def apply_position(conn: AsyncConnection[Any], pos: Position, *, reentry_cooldown_min: float,
                         market_ts: datetime | None) -> list[ClosedTrip]:
    """Write ``pos`` and its closed trips; record what is new (fills, exits, PnL, re-entry)."""
    prev = await (await conn.execute(Q["position_row"], {"symbol": pos.symbol})).fetchone()
    after = int(prev["last_fill_id"]) if prev and prev["last_fill_id"] is not None else 0
    for f in await (await conn.execute(Q["new_fills_of_symbol"], {"symbol": pos.symbol, "after": after})).fetchall():
        logger.info("fill {} {} {} {}@{} fee {} tax {}", f["fill_id"], pos.symbol, f["side"], f["qty"], f["price"],
                    f["fee"], f["tax"])
    await conn.execute(Q["upsert_position"], _position_params(pos))
    closed: list[ClosedTrip] = []
    for trip in pos.closed_trips:
        row = trip.as_row()
        got = await (await conn.execute(Q["upsert_round_trip"], row)).fetchone()
        if got is None or not got["inserted"]:
            continue
        ct = ClosedTrip(pos.symbol, int(got["trip_id"]), got["trade_date"], got["pnl"], got["exit_reason"],
                        trip.worker_id)
        closed.append(ct)
        outcome = "win" if ct.pnl > 0 else "loss" if ct.pnl < 0 else "flat"
        await ops.emit(conn, "PositionExited",
                       f"{pos.symbol} closed: pnl {ct.pnl} ({outcome}), exit {ct.exit_reason}",
                       symbol=pos.symbol, worker_id=trip.worker_id, market_ts=market_ts, pnl=ct.pnl,
                       outcome=outcome, exit_reason=ct.exit_reason, qty=row["qty"],
                       avg_entry_price=row["avg_entry_price"], avg_exit_price=row["avg_exit_price"],
                       fees=row["fees"], taxes=row["taxes"], trip_id=ct.trip_id)
        logger.info("PnL {}: pnl {} {} (entry {} exit {} qty {} fees {} taxes {})", pos.symbol, ct.pnl, outcome,
                    row["avg_entry_price"], row["avg_exit_price"], row["qty"], row["fees"], row["taxes"])
        if (ct.exit_reason or "") not in FORCED_REASONS and trip.exit_ts is not None:
            await conn.execute(Q["insert_reentry"], {
                "symbol": pos.symbol, "exit_reason": ct.exit_reason or "UNKNOWN", "exit_price": row["avg_exit_price"],
                "exited_ts": trip.exit_ts,
                "cooldown_until": trip.exit_ts + timedelta(minutes=reentry_cooldown_min)})
    for d in sorted({c.trade_date for c in closed}):
        await write_daily_summary(conn, d)
    return closed


async def sync_positions(conn: AsyncConnection[Any], *, reentry_cooldown_min: float, market_ts: datetime | None,
                         symbols: list[str] | None = None) -> list[ClosedTrip]:
    """Bring position_state up to date with the fills, in the caller's transaction."""
    await conn.execute(Q["positions_gate"], lock_params(Lock.POSITIONS_GATE))
    changed = [r["symbol"] for r in await (await conn.execute(Q["changed_symbols"])).fetchall()]
    if symbols is not None:
        changed = [s for s in changed if s in symbols]
    closed: list[ClosedTrip] = []
    for sym in changed:
        closed += await apply_position(conn, await replay(conn, sym), reentry_cooldown_min=reentry_cooldown_min,
                                       market_ts=market_ts)
    return closed


async def write_daily_summary(conn: AsyncConnection[Any], d: date) -> DailySummary:
    trips = [
        TripResult(symbol=r["symbol"], pnl=r["pnl"], fees=r["fees"], taxes=r["taxes"], exit_reason=r["exit_reason"],
                   forced=r["forced"], partial_orders=int(r["partial_orders"]),
                   entry_slippage_pct=r["entry_slippage_pct"], exit_slippage_pct=r["exit_slippage_pct"],
                   entry_context=r["entry_context"] or {})
        for r in await (await conn.execute(Q["trips_of_date"], {"trade_date": d})).fetchall()
    ]
    lo = datetime.combine(d, time(0), KST)
    bounds = {"lo": lo, "hi": lo + timedelta(days=1)}
    unfilled = [{"symbol": r["symbol"], **(r["data"] or {})}
                for r in await (await conn.execute(Q["unfilled_on_date"], bounds)).fetchall()]
    s = summarize(trips, unfilled)
    # what the day's liquidations got against the price when each began (EC-003)
    sells = await (await conn.execute(Q["liquidation_sells_on_date"], bounds)).fetchall()
    if sells:
        costs = liquidation_costs(sells)
        note = liquidation_note(costs)
        s = replace(s, notes={**s.notes, "liquidation": costs,
                              "suggestions": s.notes["suggestions"] + ([note] if note else [])})
    await conn.execute(Q["upsert_daily_summary"], {
        "trade_date": d, "realized_pnl": s.realized_pnl, "trades_count": s.trades_count, "wins": s.wins,
        "losses": s.losses, "win_rate": s.win_rate, "avg_pnl": s.avg_pnl, "max_loss": s.max_loss, "fees": s.fees,
        "taxes": s.taxes, "profit_factor": s.profit_factor, "max_drawdown": s.max_drawdown,
        "notes": Jsonb(ops.jsonable(s.notes))})
    logger.info("daily summary {}: pnl {} trades {} wins {} losses {} win_rate {} avg {} max_loss {} "
                "profit_factor {} max_drawdown {}", d, s.realized_pnl, s.trades_count, s.wins, s.losses, s.win_rate,
                s.avg_pnl, s.max_loss, s.profit_factor, s.max_drawdown)
    return s


async def risk_snapshot(conn: AsyncConnection[Any], d: date, state: str) -> RiskSnapshot:
    """Realized PnL today, unrealized at best prices, and exposure including entries on their way."""
    realized = (await (await conn.execute(Q["realized_on_date"], {"trade_date": d})).fetchone() or {}).get("pnl")
    realized_today = Decimal(realized or 0)
    unreal = ZERO
    exposure = ZERO
    per_symbol: dict[str, Decimal] = {}
    symbols: set[str] = set()
    for r in await (await conn.execute(Q["open_book"])).fetchall():
        qty, avg = int(r["qty"]), r["avg_price"]
        realized_today += r["realized_pnl"] or ZERO  # partial exits of trips still open
        unreal += unrealized(qty, avg, r["price"])
        cost = (avg or ZERO) * qty
        exposure += cost
        per_symbol[r["symbol"]] = per_symbol.get(r["symbol"], ZERO) + cost
        symbols.add(r["symbol"])
    for r in await (await conn.execute(Q["pending_entries"], STATUS_SETS)).fetchall():
        reserved = r["reserved"] or ZERO
        exposure += reserved
        per_symbol[r["symbol"]] = per_symbol.get(r["symbol"], ZERO) + reserved
        symbols.add(r["symbol"])
    return RiskSnapshot(trading_state=state, realized_today=realized_today, unrealized=unreal,
                        open_positions=len(symbols), exposure=exposure, symbol_exposure=per_symbol)
