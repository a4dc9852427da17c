"""Risk checks, run before any intent is written.

Entries must pass all of them; exits are always allowed (a risk rule that blocked a sale would only
make the risk worse), HALTED and REDUCING included.  A violation writes no intent: the caller
records a RiskViolation event instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class RiskLimits:
    daily_loss_limit: Decimal
    capital_limit: Decimal
    max_positions: int
    max_symbol_exposure: Decimal
    stop_loss_pct: Decimal


@dataclass(frozen=True)
class RiskSnapshot:
    """What the book looks like now: realized PnL today, unrealized PnL, open and pending exposure."""

    trading_state: str
    realized_today: Decimal
    unrealized: Decimal
    open_positions: int  # symbols with shares, plus symbols with an entry on its way
    exposure: Decimal  # cost of open positions plus cash reserved by pending entries
    symbol_exposure: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class EntryProposal:
    symbol: str
    qty: int
    reserve_price: Decimal  # what the broker holds per share (the upper limit for a market buy)


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


def check_entry(limits: RiskLimits, snap: RiskSnapshot, order: EntryProposal) -> list[Violation]:
    out: list[Violation] = []
    value = order.reserve_price * order.qty
    if snap.trading_state != "ACTIVE":
        out.append(Violation("trading_state", f"trading state is {snap.trading_state}: no entries",
                             {"state": snap.trading_state}))
    if order.qty <= 0:
        out.append(Violation("size", "order size is zero at this price", {"reserve_price": str(order.reserve_price)}))
    loss_now = -(snap.realized_today + snap.unrealized)
    at_risk = value * limits.stop_loss_pct / 100
    if loss_now + at_risk > limits.daily_loss_limit:
        out.append(Violation(
            "daily_loss_limit",
            f"daily loss {loss_now} + this order's risk {at_risk:.0f} exceeds {limits.daily_loss_limit}",
            {"realized": str(snap.realized_today), "unrealized": str(snap.unrealized),
             "order_risk": str(round(at_risk, 2)), "limit": str(limits.daily_loss_limit)}))
    if snap.exposure + value > limits.capital_limit:
        out.append(Violation(
            "capital_limit", f"exposure {snap.exposure} + order {value} exceeds {limits.capital_limit}",
            {"exposure": str(snap.exposure), "order_value": str(value), "limit": str(limits.capital_limit)}))
    sym = snap.symbol_exposure.get(order.symbol, Decimal(0))
    if sym + value > limits.max_symbol_exposure:
        out.append(Violation(
            "symbol_exposure", f"{order.symbol} exposure {sym} + {value} exceeds {limits.max_symbol_exposure}",
            {"symbol_exposure": str(sym), "order_value": str(value), "limit": str(limits.max_symbol_exposure)}))
    if sym == 0 and snap.open_positions + 1 > limits.max_positions:
        out.append(Violation("max_positions", f"{snap.open_positions} positions open, limit {limits.max_positions}",
                             {"open": snap.open_positions, "limit": limits.max_positions}))
    return out


def check_exit(position_qty: int, covered_qty: int, qty: int) -> list[Violation]:
    """An exit may sell only shares held and not already being sold."""
    if qty <= 0 or qty > position_qty - covered_qty:
        return [Violation("exit_size", f"sell {qty} with {position_qty} held and {covered_qty} already selling",
                          {"qty": qty, "held": position_qty, "covered": covered_qty})]
    return []
