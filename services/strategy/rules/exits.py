"""The exit engine: what to do with a position, given its price now.

Rules in order of urgency: stop loss, trailing stop from the high-water mark, take profit (a partial
first, the rest at the second target), trend break (price under the short moving average), time
exit.  The first that triggers wins; none triggering is itself a result (the monitoring event).
Forced liquidation before the close is not here: it overrides every rule and is the liquidator's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any

from services.strategy.config import Params
from services.strategy.rules.indicators import pct


class ExitKind(StrEnum):
    NONE = "NONE"
    PARTIAL = "PARTIAL"
    FULL = "FULL"


class ExitReason(StrEnum):
    STOP_LOSS = "STOP_LOSS"
    TRAILING_STOP = "TRAILING_STOP"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_2 = "TAKE_PROFIT_2"
    TREND_BREAK = "TREND_BREAK"
    TIME_EXIT = "TIME_EXIT"
    FORCED_LIQUIDATION = "FORCED_LIQUIDATION"
    FLATTEN = "FLATTEN"


FORCED_REASONS = frozenset({ExitReason.FORCED_LIQUIDATION.value, ExitReason.FLATTEN.value})


@dataclass(frozen=True)
class Holding:
    qty: int
    avg_price: Decimal
    entry_ts: datetime
    high_water: Decimal
    exit_stage: int = 0  # 1 once the partial take-profit has been sold


@dataclass(frozen=True)
class Quote:
    price: Decimal
    sma_short: Decimal | None
    ts: datetime


@dataclass(frozen=True)
class ExitDecision:
    kind: ExitKind
    reason: ExitReason | None
    qty: int
    inputs: dict[str, Any] = field(default_factory=dict)


def partial_qty(qty: int, fraction: Decimal) -> int:
    """Shares to sell at the first target; 0 means the position is too small to split."""
    q = int((Decimal(qty) * fraction).to_integral_value(ROUND_DOWN))
    return q if 0 < q < qty else 0


def evaluate_exit(h: Holding, q: Quote, p: Params, now: datetime) -> ExitDecision:
    gain = pct(q.price, h.avg_price)
    high = max(h.high_water, q.price)
    from_high = pct(q.price, high)
    held_s = (now - h.entry_ts).total_seconds()
    inputs: dict[str, Any] = {
        "price": str(q.price), "avg_price": str(round(h.avg_price, 4)), "gain_pct": round(float(gain), 4),
        "high_water": str(high), "from_high_pct": round(float(from_high), 4), "held_s": round(held_s, 1),
        "sma_short": str(round(q.sma_short, 2)) if q.sma_short is not None else None, "exit_stage": h.exit_stage,
    }

    def full(reason: ExitReason) -> ExitDecision:
        return ExitDecision(ExitKind.FULL, reason, h.qty, inputs)

    if gain <= -p.stop_loss_pct:
        return full(ExitReason.STOP_LOSS)
    if pct(high, h.avg_price) >= p.trailing_activate_pct and from_high <= -p.trailing_stop_pct:
        return full(ExitReason.TRAILING_STOP)
    if gain >= p.take_profit2_pct:
        return full(ExitReason.TAKE_PROFIT_2)
    if gain >= p.take_profit_pct and h.exit_stage == 0:
        part = partial_qty(h.qty, p.take_profit_fraction)
        if part == 0:
            return full(ExitReason.TAKE_PROFIT)
        return ExitDecision(ExitKind.PARTIAL, ExitReason.TAKE_PROFIT, part, inputs)
    if (q.sma_short is not None and held_s >= p.trend_min_hold_s
            and q.price < q.sma_short * (1 - p.trend_break_buffer_pct / 100)):
        return full(ExitReason.TREND_BREAK)
    if held_s >= p.max_hold_min * 60:
        return full(ExitReason.TIME_EXIT)
    return ExitDecision(ExitKind.NONE, None, 0, inputs)
