"""What a day report shows, as plain frozen values: ``data`` loads them, ``charts`` draws them and
``page`` lays them out.  The arithmetic here (the equity curve, the exits of a trip, the figures when
Strategy wrote no summary) is pure, so it is tested without a database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from stock_manager.services.strategy.rules.summary import max_drawdown, profit_factor

ZERO = Decimal(0)
# context keys that are bookkeeping, not what the decision was made on
BOOKKEEPING = frozenset({"scan_id", "strategy", "strategy_code_version", "reserve_price", "rule"})


@dataclass(frozen=True)
class Fill:
    fill_id: int
    side: str
    qty: int
    price: Decimal
    fee: Decimal
    tax: Decimal
    ts: datetime
    intent_id: str | None
    intent_type: str | None
    reason: str | None
    context: Mapping[str, Any]


@dataclass(frozen=True)
class Exit:
    """One sell decision of a trip (a partial take-profit, then the rest): the rule that fired."""

    reason: str
    qty: int
    avg_price: Decimal
    ts: datetime
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class Trip:
    trip_id: int
    symbol: str
    name: str | None
    entry_ts: datetime
    exit_ts: datetime
    qty: int
    avg_entry_price: Decimal
    avg_exit_price: Decimal
    fees: Decimal
    taxes: Decimal
    pnl: Decimal
    exit_reason: str | None
    forced: bool
    strategy_version: str | None
    params_version: str | None
    entry_reason: str | None
    score: Decimal | None
    entry_inputs: Mapping[str, Any]
    filters: Mapping[str, Any] | None  # the scan candidate's verdict, when the entry came from a scan
    fills: tuple[Fill, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.symbol} {self.name}" if self.name else self.symbol

    @property
    def exits(self) -> list[Exit]:
        return exits_of(self.fills)


@dataclass(frozen=True)
class Candle:
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


@dataclass(frozen=True)
class Costs:
    """The day's fills of one side: how many, for how much, and what they cost."""

    side: str
    fills: int
    qty: int
    amount: Decimal
    fees: Decimal
    taxes: Decimal


@dataclass(frozen=True)
class Figures:
    """The daily summary's numbers: as Strategy stored them, or derived here when it has not (yet)."""

    realized_pnl: Decimal
    trades: int
    wins: int
    losses: int
    win_rate: Decimal | None
    avg_pnl: Decimal | None
    max_loss: Decimal | None
    profit_factor: Decimal | None
    max_drawdown: Decimal
    fees: Decimal
    taxes: Decimal
    notes: Mapping[str, Any]
    stored: bool  # False: no trade.daily_summaries row for the day; the notes are empty


@dataclass(frozen=True)
class ParamsVersion:
    version: str
    effective_date: date
    strategy_version: str
    params: Mapping[str, Any]
    note: str | None


@dataclass(frozen=True)
class Day:
    trade_date: date
    trips: tuple[Trip, ...]
    candles: Mapping[int, tuple[Candle, ...]]  # by trip_id, only for the trips that are charted
    costs: tuple[Costs, ...]
    figures: Figures
    params: tuple[ParamsVersion, ...] = ()
    first_fill_ts: datetime | None = None
    last_fill_ts: datetime | None = None
    generated_ts: datetime | None = None  # the wall clock's time of the render
    charted: int = 0  # how many trips get a chart (the rest are counted as omitted)

    @property
    def omitted(self) -> int:
        return len(self.trips) - self.charted

    @property
    def total_fees(self) -> Decimal:
        return sum((c.fees for c in self.costs), ZERO)

    @property
    def total_taxes(self) -> Decimal:
        return sum((c.taxes for c in self.costs), ZERO)


@dataclass(frozen=True)
class Point:
    """The realized equity curve just after ``ts``, and how far it stands below its peak so far."""

    ts: datetime
    equity: Decimal
    drawdown: Decimal  # >= 0, in won


def equity_curve(trips: Sequence[Trip], start: datetime | None = None) -> list[Point]:
    """Realized PnL after fees and tax, stepped at each round trip's close, from 0 at ``start``.

    Its largest drawdown is the summary's ``max_drawdown`` (the same walk, the same order).
    """
    ordered = sorted(trips, key=lambda t: (t.exit_ts, t.trip_id))
    points: list[Point] = []
    if ordered:
        points.append(Point(min(start or ordered[0].entry_ts, ordered[0].entry_ts), ZERO, ZERO))
    equity = peak = ZERO
    for t in ordered:
        equity += t.pnl
        peak = max(peak, equity)
        points.append(Point(t.exit_ts, equity, peak - equity))
    return points


def exits_of(fills: Sequence[Fill]) -> list[Exit]:
    """The sells of a trip grouped by the intent that ordered them, in the order they first filled."""
    groups: dict[str, list[Fill]] = {}
    for f in sorted(fills, key=lambda f: f.fill_id):
        if f.side == "SELL":
            groups.setdefault(f.intent_id or f"fill-{f.fill_id}", []).append(f)
    out: list[Exit] = []
    for fs in groups.values():
        qty = sum(f.qty for f in fs)
        amount = sum((f.price * f.qty for f in fs), ZERO)
        first = fs[0]
        out.append(Exit(reason=first.reason or "UNKNOWN", qty=qty,
                        avg_price=(amount / qty).quantize(Decimal("0.01")) if qty else ZERO, ts=first.ts,
                        inputs=decision_inputs(first.context)))
    return out


def decision_inputs(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a decision was made on, without the bookkeeping keys an intent's context also carries."""
    return {k: v for k, v in (context or {}).items() if k not in BOOKKEEPING and v is not None}


def figures(trips: Sequence[Trip], stored: Mapping[str, Any] | None) -> Figures:
    """The stored daily summary; or, when Strategy has written none, the numbers from the trips."""
    if stored is not None:
        return Figures(
            realized_pnl=stored["realized_pnl"], trades=int(stored["trades_count"]), wins=int(stored["wins"]),
            losses=int(stored["losses"]), win_rate=stored["win_rate"], avg_pnl=stored["avg_pnl"],
            max_loss=stored["max_loss"], profit_factor=stored["profit_factor"], max_drawdown=stored["max_drawdown"],
            fees=stored["fees"], taxes=stored["taxes"], notes=stored["notes"] or {}, stored=True)
    ordered = sorted(trips, key=lambda t: (t.exit_ts, t.trip_id))
    pnls = [t.pnl for t in ordered]
    n = len(pnls)
    total = sum(pnls, ZERO)
    wins = sum(1 for p in pnls if p > 0)
    losers = [p for p in pnls if p < 0]
    return Figures(
        realized_pnl=total, trades=n, wins=wins, losses=len(losers),
        win_rate=(Decimal(wins) / n).quantize(Decimal("0.0001")) if n else None,
        avg_pnl=(total / n).quantize(Decimal("0.01")) if n else None, max_loss=min(losers) if losers else None,
        profit_factor=profit_factor(pnls), max_drawdown=max_drawdown(pnls),
        fees=sum((t.fees for t in ordered), ZERO), taxes=sum((t.taxes for t in ordered), ZERO), notes={},
        stored=False)
