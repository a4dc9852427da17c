"""Intents Strategy writes and what Execution made of them.

An intent is the only way Strategy trades.  Its ``action_key`` makes a repeated decision harmless:
entries are keyed by worker, symbol, trade date and the worker's entry count; sells by symbol, round
trip and the number of sells already written for that trip, so a worker and the liquidator deciding
the same sale at the same moment compute the same key and only one intent survives.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from stock_manager.services.strategy import ops
from stock_manager.services.strategy.queries import Q
from stock_manager.shared.trade_states import ORDER_TERMINAL, STATUS_SETS, IntentStatus, OrderStatus


@dataclass(frozen=True)
class IntentSpec:
    action_key: str
    symbol: str
    side: str
    intent_type: str
    qty: int
    order_type: str
    limit_price: Decimal | None
    reason: str
    worker_id: str | None
    strategy_version: str
    params_version: str
    ref_price: Decimal | None
    context: dict[str, Any]
    candidate_id: int | None = None


@dataclass(frozen=True)
class Written:
    intent_id: UUID
    created: bool  # False: the action_key existed, this decision had already been written


async def write_intent(conn: AsyncConnection[Any], spec: IntentSpec, market_ts: datetime) -> Written:
    params = {
        "action_key": spec.action_key, "symbol": spec.symbol, "side": spec.side, "intent_type": spec.intent_type,
        "qty": spec.qty, "order_type": spec.order_type, "limit_price": spec.limit_price,
        "worker_id": spec.worker_id, "reason": spec.reason, "strategy_version": spec.strategy_version,
        "params_version": spec.params_version, "market_ts": market_ts,
    }
    row = await (await conn.execute(Q["insert_intent"], params)).fetchone()
    if row is None:
        existing = await (await conn.execute(Q["intent_by_key"], {"action_key": spec.action_key})).fetchone()
        assert existing is not None
        return Written(existing["intent_id"], False)
    intent_id: UUID = row["intent_id"]
    await conn.execute(Q["insert_intent_context"], {
        "intent_id": intent_id, "symbol": spec.symbol, "worker_id": spec.worker_id, "ref_price": spec.ref_price,
        "candidate_id": spec.candidate_id, "context": Jsonb(ops.jsonable(spec.context)), "market_ts": market_ts})
    await ops.emit(conn, "IntentCreated",
                   f"intent {intent_id} {spec.intent_type} {spec.side} {spec.symbol} x{spec.qty} {spec.order_type}"
                   f"{' @' + str(spec.limit_price) if spec.limit_price else ''} status NEW ({spec.reason})",
                   symbol=spec.symbol, worker_id=spec.worker_id, intent_id=intent_id, market_ts=market_ts,
                   action_key=spec.action_key, side=spec.side, intent_type=spec.intent_type, qty=spec.qty,
                   order_type=spec.order_type, limit_price=spec.limit_price, reason=spec.reason,
                   ref_price=spec.ref_price, strategy_version=spec.strategy_version,
                   params_version=spec.params_version)
    return Written(intent_id, True)


class Fate(StrEnum):
    PENDING = "PENDING"  # Execution has not finished with it
    FAILED = "FAILED"  # nothing bought or sold and nothing will be
    DONE = "DONE"  # the order is over and something filled
    WORKING = "WORKING"  # filled in part, the order still open


@dataclass(frozen=True)
class Outcome:
    fate: Fate
    intent_status: str
    order_status: str | None
    filled_qty: int
    reason: str | None
    order_id: int | None
    order_age_s: float | None
    qty: int


def judge(row: dict[str, Any]) -> Outcome:
    """What became of an intent, from its row and its order's (pure)."""
    ist = row["intent_status"]
    ost = row["order_status"]
    filled = int(row["filled_qty"] or 0)
    reason = row["order_reason"] or row["intent_reason"]
    base = {"intent_status": ist, "order_status": ost, "filled_qty": filled, "reason": reason,
            "order_id": row["order_id"], "order_age_s": row["order_age_s"], "qty": int(row["qty"])}
    if ost is not None and ost in ORDER_TERMINAL:
        return Outcome(Fate.DONE if filled > 0 else Fate.FAILED, **base)
    if ist in (IntentStatus.REJECTED, IntentStatus.FAILED, IntentStatus.DUPLICATE) and ost is None:
        return Outcome(Fate.FAILED, **base)
    if filled > 0:
        return Outcome(Fate.WORKING, **base)
    return Outcome(Fate.PENDING, **base)


async def outcome(conn: AsyncConnection[Any], intent_id: UUID) -> Outcome:
    row = await (await conn.execute(Q["intent_outcome"], {"intent_id": intent_id})).fetchone()
    assert row is not None, f"intent {intent_id} vanished"
    return judge(row)


async def open_sell_qty(conn: AsyncConnection[Any], symbol: str, *, types: Collection[str] | None = None) -> int:
    """Shares on their way to be sold, by orders of ``types`` only if given."""
    row = await (await conn.execute(Q["open_sell_qty"], {
        **STATUS_SETS, "symbol": symbol, "types": sorted(types) if types is not None else None})).fetchone()
    return int(row["qty"]) if row else 0


async def sells_written(conn: AsyncConnection[Any], symbol: str, trip: int, *, types: Collection[str] | None = None,
                        reasons: Collection[str] | None = None, since: datetime | None = None) -> int:
    """Sells written for a round trip: all of them (the next action_key), or those of ``types`` and
    ``reasons`` since ``since`` (the attempts of one stage of the close)."""
    row = await (await conn.execute(Q["count_exit_intents"], {
        "symbol": symbol, "prefix": exit_key_prefix(symbol, trip),
        "types": sorted(types) if types is not None else None,
        "reasons": sorted(reasons) if reasons is not None else None, "since": since})).fetchone()
    return int(row["n"]) if row else 0


def exit_key_prefix(symbol: str, trip: int) -> str:
    return f"exit:{symbol}:{trip}:"


def entry_key(worker_id: str, symbol: str, day: str, seq: int) -> str:
    return f"entry:{worker_id}:{symbol}:{day}:{seq}"


async def request_cancel(conn: AsyncConnection[Any], *, order_id: int, intent_id: UUID, symbol: str, reason: str,
                         by: str, market_ts: datetime) -> bool:
    """Ask Execution to cancel an order (trade.cancel_requests); one open request per order."""
    row = await (await conn.execute(Q["insert_cancel_request"], {
        "request_key": f"cancel:{order_id}:{reason}", "order_id": order_id, "intent_id": intent_id,
        "symbol": symbol, "reason": reason, "requested_by": by})).fetchone()
    if row is None:
        return False
    await ops.emit(conn, "CancelRequested", f"cancel of order {order_id} ({symbol}) requested: {reason}",
                   level="WARN", symbol=symbol, intent_id=intent_id, market_ts=market_ts, order_id=order_id,
                   reason=reason, request_id=row["request_id"])
    return True


OPEN_ORDER = frozenset({OrderStatus.SUBMITTED, OrderStatus.PARTIAL})
