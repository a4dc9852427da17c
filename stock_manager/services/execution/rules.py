"""Execution's decisions as pure functions: what to send, whether it may be sent, what an order's
status is, what a fill costs, and which broker order an in-doubt submission became."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from stock_manager.shared.market_rules import Fees, Market, commission, on_tick, phase_at, sell_tax, tick_size
from stock_manager.shared.trade_states import (
    ORD_DVSN as ORD_DVSN,  # intent order_type → KIS ORD_DVSN (seed 002 and the close)
)
from stock_manager.shared.trade_states import ORDER_TYPE_PHASES, PRICED_ORDER_TYPES, OrderStatus, OrderType

# where each session-bound order type belongs, as status_reason says it
_SESSION_OF = {
    OrderType.CLMT: "continuous trading, 09:00-15:20 (it cannot join the closing call)",
    OrderType.CLOSE: "the post-close session at the closing price, 15:40-16:00",
    OrderType.AHS: "the after-hours single-price session, 16:00-18:00",
}


@dataclass(frozen=True, slots=True)
class Intent:
    intent_id: str
    action_key: str
    symbol: str
    side: str
    intent_type: str
    qty: int
    order_type: str
    limit_price: Decimal | None


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    symbol: str
    market: Market
    halted: bool
    upper_limit: int | None
    lower_limit: int | None
    last_price: Decimal | None


@dataclass(frozen=True, slots=True)
class Funds:
    """What the account can still do, as Execution last learned it (None: not known)."""

    cash: Decimal | None
    sellable: dict[str, int]


def validate(intent: Intent, info: SymbolInfo | None, trading_state: str,
             at: datetime | None = None) -> str | None:
    """Why this intent must not be sent, whatever the account holds, or None.

    Every reason is a sentence for status_reason.  What the account can afford is a separate
    question (``unaffordable``): its answer can be stale and is checked with the broker first.
    ``at`` (market time) lets the session-bound types (CLMT, CLOSE, AHS) be refused outside their
    session; the ±10 % band of an AHS price around the close is the broker's to judge.
    """
    if info is None:
        return f"unknown symbol {intent.symbol}"
    if intent.qty <= 0:
        return f"quantity must be positive, got {intent.qty}"
    if intent.order_type not in ORD_DVSN:
        return f"unknown order type {intent.order_type}"
    entry = intent.intent_type == "ENTRY"
    if (intent.side == "BUY") != entry:
        return f"{intent.intent_type} must be a {'BUY' if entry else 'SELL'}"
    if entry and trading_state in ("HALTED", "REDUCING"):
        return f"trading state is {trading_state}: entries are blocked"
    if entry and info.halted:
        return f"{intent.symbol} is halted: entries are blocked"
    phases = ORDER_TYPE_PHASES.get(intent.order_type)
    if phases is not None and at is not None and phase_at(at) not in phases:
        return (f"order type {intent.order_type} (ORD_DVSN {ORD_DVSN[intent.order_type]}) is only for "
                f"{_SESSION_OF[OrderType(intent.order_type)]}; the market is {phase_at(at)}")
    if intent.order_type not in PRICED_ORDER_TYPES and intent.limit_price is not None:
        return f"a {intent.order_type} order carries no price, got {intent.limit_price}"
    if intent.order_type in PRICED_ORDER_TYPES:
        if intent.limit_price is None:
            return f"a {intent.order_type} order needs a limit price"
        price = intent.limit_price
        if price != price.to_integral_value() or not on_tick(int(price), info.market):
            return (f"limit price {price} is off the tick grid "
                    f"(tick {tick_size(int(price), info.market)} at that price)")
        if info.upper_limit is not None and price > info.upper_limit:
            return f"limit price {price} is above the daily upper limit {info.upper_limit}"
        if info.lower_limit is not None and price < info.lower_limit:
            return f"limit price {price} is below the daily lower limit {info.lower_limit}"
    return None


def unaffordable(intent: Intent, info: SymbolInfo, funds: Funds, commission_rate: Fees) -> str | None:
    """Why the account cannot carry this order by ``funds``, or None (also when funds are unknown)."""
    if intent.side == "BUY" and funds.cash is not None:
        need = buy_reservation(intent, info, commission_rate)
        if need is not None and need > funds.cash:
            return f"not enough cash: the order reserves {need} won, {funds.cash} available"
    if intent.side == "SELL" and intent.symbol in funds.sellable:
        have = funds.sellable[intent.symbol]
        if intent.qty > have:
            return f"not enough shares to sell: {intent.qty} wanted, {have} sellable"
    return None


def buy_reservation(intent: Intent, info: SymbolInfo, commission_rate: Fees) -> Decimal | None:
    """Cash KIS holds for a buy: at the limit price, or at the upper limit for a market order."""
    price = intent.limit_price if intent.order_type in PRICED_ORDER_TYPES else (
        Decimal(info.upper_limit) if info.upper_limit is not None else None)
    if price is None:
        return None
    amount = price * intent.qty
    return amount + commission(amount, commission_rate)


def order_status(qty: int, filled: int, cancelled: int, rejected: bool = False) -> OrderStatus:
    """An order's status from quantities: the broker's facts decide, never a guess."""
    if rejected and filled == 0:
        return OrderStatus.REJECTED
    if filled >= qty:
        return OrderStatus.FILLED
    if cancelled > 0 and filled + cancelled >= qty:
        return OrderStatus.CANCELLED
    if filled > 0:
        return OrderStatus.PARTIAL
    return OrderStatus.SUBMITTED


def fill_costs(side: str, qty: int, price: Decimal, market: Market, on: date,
               fees: Fees) -> tuple[Decimal, Decimal]:
    """(fee, tax) of one fill as the broker charges them, so our totals can be held against its own.

    ``on`` is the trade date; the tax follows the settlement date it implies.  The fee's tier is
    chosen by this fill's trade value, each fill on its own, as the simulator charges them.
    """
    amount = price * qty
    fee = commission(amount, fees)
    tax = sell_tax(amount, market, on) if side == "SELL" else Decimal(0)
    return fee, tax


# --- in-doubt resolution ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PendingOrder:
    order_id: int
    symbol: str
    side: str
    qty: int
    ord_dvsn: str
    price: int  # 0 for a market order
    attempt_at: datetime  # market time of the write-ahead


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    odno: str
    symbol: str
    side: str
    qty: int
    ord_dvsn: str
    price: int
    at: datetime | None  # market time the broker took it
    orgn_odno: str | None


def _key(symbol: str, side: str, qty: int, ord_dvsn: str, price: int) -> tuple[str, str, int, str, int]:
    return symbol, side, qty, ord_dvsn, price


def match_in_doubt(
    pending: Sequence[PendingOrder],
    unlinked: Iterable[BrokerOrder],
    *,
    before: timedelta,
    after: timedelta,
    margin: timedelta,
) -> dict[int, BrokerOrder | None]:
    """Which broker order each in-doubt submission became; None means the broker has none.

    A candidate is an order the broker lists that no row of ours is linked to (a cancel/modify,
    which carries an original number, never is), with the same symbol, side, quantity, order type
    and price.  One taken within [attempt - before, attempt + after] is preferred; failing that the
    nearest one taken later is taken all the same, because calling an order absent when the broker
    may hold it is the one mistake that sends an order twice.  One the broker took before our
    attempt, less ``margin`` (the same margin the order list is read back with, for the clocks),
    cannot be ours: the broker cannot have received an order before we sent it.  So an identical
    order placed by hand earlier (HTS, MTS, not yet recorded as MANUAL) is never adopted.  Identical
    submissions are interchangeable, so they are paired oldest with oldest.
    """
    groups: dict[tuple[str, str, int, str, int], list[BrokerOrder]] = {}
    for b in unlinked:
        if b.orgn_odno:
            continue
        groups.setdefault(_key(b.symbol, b.side, b.qty, b.ord_dvsn, b.price), []).append(b)
    for g in groups.values():
        g.sort(key=lambda b: (b.at is None, b.at, b.odno))
    out: dict[int, BrokerOrder | None] = {}
    for p in sorted(pending, key=lambda p: (p.attempt_at, p.order_id)):
        cands = groups.get(_key(p.symbol, p.side, p.qty, p.ord_dvsn, p.price), [])
        chosen = None
        for b in cands:
            if b.at is None or p.attempt_at - before <= b.at <= p.attempt_at + after:
                chosen = b
                break
        later = [b for b in cands if b.at is None or b.at >= p.attempt_at - margin]
        if chosen is None and later:
            chosen = min(later, key=lambda b: abs((b.at - p.attempt_at).total_seconds()) if b.at else 0.0)
        if chosen is not None:
            cands.remove(chosen)
        out[p.order_id] = chosen
    return out
