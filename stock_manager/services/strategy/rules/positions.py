"""Positions from fills: quantity, weighted average price (reset when flat), realized PnL with the
fees and taxes the fills carry, and the round trips (flat -> long -> flat) they add up to.

Fills are folded in ``fill_id`` order, the order Strategy learns of them.  Buy fees count as
realized at the buy, so a closed trip's realized PnL is exactly
``sell proceeds - buy cost - fees - taxes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from stock_manager.services.strategy.rules.exits import FORCED_REASONS
from stock_manager.shared.market_rules import trade_date

ZERO = Decimal(0)


class PositionError(ValueError):
    """The fills do not add up (more sold than held): positions cannot be trusted."""


@dataclass(frozen=True)
class FillRow:
    fill_id: int
    order_id: int
    side: str
    qty: int
    price: Decimal
    fee: Decimal
    tax: Decimal
    ts: datetime
    intent_id: UUID | None = None
    reason: str | None = None
    worker_id: str | None = None
    strategy_version: str | None = None
    params_version: str | None = None
    order_qty: int | None = None
    order_filled_qty: int | None = None


@dataclass
class Trip:
    symbol: str
    first_fill_id: int
    entry_ts: datetime
    last_fill_id: int = 0
    exit_ts: datetime | None = None
    bought: int = 0
    sold: int = 0
    buy_amount: Decimal = ZERO
    sell_amount: Decimal = ZERO
    fees: Decimal = ZERO
    taxes: Decimal = ZERO
    realized: Decimal = ZERO
    exit_reason: str | None = None
    worker_id: str | None = None
    entry_intent_id: UUID | None = None
    strategy_version: str | None = None
    params_version: str | None = None
    buy_orders: set[int] = field(default_factory=set)
    sell_orders: set[int] = field(default_factory=set)
    fills_per_order: dict[int, int] = field(default_factory=dict)
    partial_orders: set[int] = field(default_factory=set)
    entry_slip_num: Decimal = ZERO
    entry_slip_den: Decimal = ZERO
    exit_slip_num: Decimal = ZERO
    exit_slip_den: Decimal = ZERO

    @property
    def closed(self) -> bool:
        return self.exit_ts is not None

    @property
    def pnl(self) -> Decimal:
        return self.sell_amount - self.buy_amount - self.fees - self.taxes

    @property
    def forced(self) -> bool:
        return (self.exit_reason or "") in FORCED_REASONS

    @property
    def trade_date(self) -> date:
        assert self.exit_ts is not None
        return trade_date(self.exit_ts)

    def slippage(self, entry: bool) -> Decimal | None:
        num, den = (self.entry_slip_num, self.entry_slip_den) if entry else (self.exit_slip_num, self.exit_slip_den)
        return (num / den * 100).quantize(Decimal("0.0001")) if den else None

    def as_row(self) -> dict[str, Any]:
        assert self.exit_ts is not None
        return {
            "symbol": self.symbol, "first_fill_id": self.first_fill_id, "last_fill_id": self.last_fill_id,
            "trade_date": self.trade_date, "entry_ts": self.entry_ts, "exit_ts": self.exit_ts, "qty": self.bought,
            "buy_amount": self.buy_amount, "sell_amount": self.sell_amount,
            "avg_entry_price": (self.buy_amount / self.bought).quantize(Decimal("0.0001")),
            "avg_exit_price": (self.sell_amount / self.sold).quantize(Decimal("0.0001")),
            "fees": self.fees, "taxes": self.taxes, "pnl": self.pnl, "exit_reason": self.exit_reason,
            "forced": self.forced, "worker_id": self.worker_id, "entry_intent_id": self.entry_intent_id,
            "strategy_version": self.strategy_version, "params_version": self.params_version,
            "buy_orders": len(self.buy_orders), "sell_orders": len(self.sell_orders),
            "partial_orders": len(self.partial_orders | {o for o, n in self.fills_per_order.items() if n > 1}),
            "entry_slippage_pct": self.slippage(True), "exit_slippage_pct": self.slippage(False),
        }


@dataclass(frozen=True)
class Position:
    symbol: str
    qty: int
    avg_price: Decimal | None
    cost: Decimal
    fills_count: int
    last_fill_id: int | None
    trip: Trip | None  # the open trip, if any
    closed_trips: list[Trip]


def fold(symbol: str, fills: Iterable[FillRow], ref_prices: Mapping[UUID, Decimal] | None = None) -> Position:
    """Replay ``fills`` of one symbol; raises PositionError if more is sold than was held."""
    refs = ref_prices or {}
    qty = 0
    cost = ZERO  # cost basis of the shares held, at fill prices
    trip: Trip | None = None
    closed: list[Trip] = []
    n = 0
    last: int | None = None
    for f in sorted(fills, key=lambda x: x.fill_id):
        n += 1
        last = f.fill_id
        if f.side == "BUY":
            if trip is None:
                trip = Trip(symbol, f.fill_id, f.ts, worker_id=f.worker_id, entry_intent_id=f.intent_id,
                            strategy_version=f.strategy_version, params_version=f.params_version)
            qty += f.qty
            cost += f.price * f.qty
            trip.bought += f.qty
            trip.buy_amount += f.price * f.qty
            trip.buy_orders.add(f.order_id)
            trip.realized -= f.fee + f.tax
            ref = refs.get(f.intent_id) if f.intent_id is not None else None
            if ref:
                trip.entry_slip_num += (f.price - ref) * f.qty
                trip.entry_slip_den += ref * f.qty
        else:
            if trip is None or f.qty > qty:
                raise PositionError(f"{symbol}: fill {f.fill_id} sells {f.qty} with {qty} held")
            avg = cost / qty
            trip.realized += (f.price - avg) * f.qty - f.fee - f.tax
            cost -= avg * f.qty
            qty -= f.qty
            trip.sold += f.qty
            trip.sell_amount += f.price * f.qty
            trip.sell_orders.add(f.order_id)
            trip.exit_reason = f.reason or trip.exit_reason
            ref = refs.get(f.intent_id) if f.intent_id is not None else None
            if ref:
                trip.exit_slip_num += (ref - f.price) * f.qty
                trip.exit_slip_den += ref * f.qty
        trip.fees += f.fee
        trip.taxes += f.tax
        trip.last_fill_id = f.fill_id
        trip.fills_per_order[f.order_id] = trip.fills_per_order.get(f.order_id, 0) + 1
        if f.order_qty is not None and f.order_filled_qty is not None and f.order_filled_qty < f.order_qty:
            trip.partial_orders.add(f.order_id)
        if qty == 0:
            trip.exit_ts = f.ts
            closed.append(trip)
            trip = None
            cost = ZERO
    avg_price = (cost / qty) if qty else None
    return Position(symbol, qty, avg_price, cost, n, last, trip, closed)


def unrealized(qty: int, avg_price: Decimal | None, price: Decimal | None) -> Decimal:
    if not qty or avg_price is None or price is None:
        return ZERO
    return (price - avg_price) * qty
