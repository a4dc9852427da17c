"""The exit engine: what to do with a position, given its price now.

Rules in order of urgency: stop loss, trailing stop from the high-water mark, take profit (a partial
first, the rest at the second target), trend break (price under the short moving average), time
exit.  The first that triggers wins; none triggering is itself a result (the monitoring event).
Forced liquidation before the close is not here: it overrides every rule and is the liquidator's.

A rule is only as good as the price it judges, so the price must be fresh: ``quote_is_stale``
says when PriceSync's published quote is too old to act on (the worker then asks the broker).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any

from stock_manager.services.strategy.config import Params
from stock_manager.services.strategy.port import FORCED_REASONS, ExitDecision, ExitKind, ExitReason
from stock_manager.services.strategy.rules.indicators import pct

__all__ = ["FORCED_REASONS", "ExitDecision", "ExitKind", "ExitReason", "Holding", "PriceSource", "Quote",
           "evaluate_exit", "partial_qty", "quote_age_limit_s", "quote_is_stale"]


class PriceSource(StrEnum):
    PRICESYNC = "PRICESYNC"  # market.prices_best, as PriceSync published it
    REST = "REST"  # KIS inquire-price, asked by Strategy itself because the published quote was stale


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
    ts: datetime  # when the price was true, on the market clock
    source: PriceSource = PriceSource.PRICESYNC


def partial_qty(qty: int, fraction: Decimal) -> int:
    """Shares to sell at the first target; 0 means the position is too small to split."""
    q = int((Decimal(qty) * fraction).to_integral_value(ROUND_DOWN))
    return q if 0 < q < qty else 0


def quote_age_limit_s(max_age_s: float, floor_wall_s: float, speed: float) -> float:
    """The oldest quote an exit may judge, in market seconds.

    Prices move with the market, so the limit is market time; but the pipeline that delivers a
    price (PriceSync's batches, a database round trip) takes wall time, so on a sped-up clock the
    limit never drops below ``floor_wall_s`` of wall time, or every quote would look stale at 60x.
    """
    return max(max_age_s, floor_wall_s * max(speed, 0.0))


def quote_is_stale(ts: datetime | None, now: datetime, limit_s: float) -> bool:
    """No quote, or one older than ``limit_s`` market seconds.  A quote stamped a little ahead of
    ``now`` (another process's clock) is fresh."""
    return ts is None or (now - ts).total_seconds() > limit_s


def evaluate_exit(h: Holding, q: Quote, p: Params, now: datetime) -> ExitDecision:
    gain = pct(q.price, h.avg_price)
    high = max(h.high_water, q.price)
    from_high = pct(q.price, high)
    held_s = (now - h.entry_ts).total_seconds()
    inputs: dict[str, Any] = {
        "price": str(q.price), "avg_price": str(round(h.avg_price, 4)), "gain_pct": round(float(gain), 4),
        "high_water": str(high), "from_high_pct": round(float(from_high), 4), "held_s": round(held_s, 1),
        "sma_short": str(round(q.sma_short, 2)) if q.sma_short is not None else None, "exit_stage": h.exit_stage,
        "price_source": q.source.value, "quote_age_s": round((now - q.ts).total_seconds(), 1),
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
