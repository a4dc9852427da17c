"""The daily summary and the notes for tomorrow's tuning.

Numbers (SC-011): realized PnL, trade count, wins, losses, win rate, average and worst trade, fees
and taxes, profit factor and maximum drawdown (seed 001's PnLCalculator lists the last two beside
the win rate: a 60 % win rate means little when the losers are three times the winners).  Notes:
which exit reasons and which signal inputs went with winners and with losers, the thin-liquidity
trades (partial fills, slippage against the decision price), what the forced liquidation cost, and
what could not be sold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
SIGNAL_FEATURES = ("breakout_pct", "trend_pct", "spread_pct", "change_pct")
THIN_SLIPPAGE_PCT = Decimal("0.3")


@dataclass(frozen=True)
class TripResult:
    symbol: str
    pnl: Decimal
    fees: Decimal
    taxes: Decimal
    exit_reason: str | None
    forced: bool
    partial_orders: int
    entry_slippage_pct: Decimal | None
    exit_slippage_pct: Decimal | None
    entry_context: Mapping[str, Any]


@dataclass(frozen=True)
class DailySummary:
    realized_pnl: Decimal
    trades_count: int
    wins: int
    losses: int
    win_rate: Decimal | None
    avg_pnl: Decimal | None
    max_loss: Decimal | None
    fees: Decimal
    taxes: Decimal
    notes: dict[str, Any]
    profit_factor: Decimal | None = None  # gross wins over gross losses; None when nothing lost
    max_drawdown: Decimal = ZERO  # won, the largest fall from a peak of the day's realized equity


def profit_factor(pnls: Sequence[Decimal]) -> Decimal | None:
    """Gross profit over gross loss, after fees and tax.  None when no trade lost: the ratio is
    unbounded then, and a number such as 999 would read as a measurement."""
    lost = -sum((p for p in pnls if p < 0), ZERO)
    if lost == 0:
        return None
    return (sum((p for p in pnls if p > 0), ZERO) / lost).quantize(Decimal("0.0001"))


def max_drawdown(pnls: Sequence[Decimal]) -> Decimal:
    """The largest peak-to-trough fall of realized equity, stepped at each round trip in time order.

    The curve starts at 0 (the day's start is a peak), so a day that opens with losers draws down
    from 0.  Only closes move realized equity, so these steps are the whole curve.
    """
    equity = peak = worst = ZERO
    for p in pnls:
        equity += p
        peak = max(peak, equity)
        worst = max(worst, peak - equity)
    return worst


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _features(trips: Sequence[TripResult]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(trips)}
    for f in SIGNAL_FEATURES:
        vals = []
        for t in trips:
            v = t.entry_context.get(f)
            try:
                if v is not None:
                    vals.append(float(v))
            except (TypeError, ValueError):
                continue
        out[f] = _mean(vals)
    return out


def summarize(trips: Sequence[TripResult], unfilled: Sequence[Mapping[str, Any]] = ()) -> DailySummary:
    """``trips`` in the order they closed (the drawdown depends on it)."""
    n = len(trips)
    total = sum((t.pnl for t in trips), ZERO)
    wins = sum(1 for t in trips if t.pnl > 0)
    losses = sum(1 for t in trips if t.pnl < 0)
    negatives = [t.pnl for t in trips if t.pnl < 0]
    by_reason: dict[str, dict[str, Any]] = {}
    for t in trips:
        r = by_reason.setdefault(t.exit_reason or "UNKNOWN", {"n": 0, "wins": 0, "pnl": ZERO})
        r["n"] += 1
        r["wins"] += 1 if t.pnl > 0 else 0
        r["pnl"] += t.pnl
    thin = [t for t in trips if t.partial_orders > 0
            or (t.entry_slippage_pct or ZERO) > THIN_SLIPPAGE_PCT or (t.exit_slippage_pct or ZERO) > THIN_SLIPPAGE_PCT]
    forced = [t for t in trips if t.forced]
    forced_losses = [t for t in forced if t.pnl < 0]
    entry_slips = [float(t.entry_slippage_pct) for t in trips if t.entry_slippage_pct is not None]
    exit_slips = [float(t.exit_slippage_pct) for t in trips if t.exit_slippage_pct is not None]
    suggestions: list[str] = []
    if forced_losses:
        suggestions.append("forced liquidation closed losing trades: consider an earlier time exit or entry_end")
    if thin:
        suggestions.append("thin-liquidity fills: consider raising min_turnover or lowering capital_per_trade")
    if n and losses > wins:
        suggestions.append("more losers than winners: compare signal_inputs.winners with .losers")
    if unfilled:
        suggestions.append("positions left unsold at the close: avoid the symbols listed in unfilled")
    notes: dict[str, Any] = {
        "by_exit_reason": {k: {"n": v["n"], "wins": v["wins"], "pnl": str(v["pnl"])} for k, v in by_reason.items()},
        "signal_inputs": {"winners": _features([t for t in trips if t.pnl > 0]),
                          "losers": _features([t for t in trips if t.pnl <= 0])},
        "thin_liquidity": {
            "trades": len(thin),
            "symbols": sorted({t.symbol for t in thin}),
            "partial_fill_trades": sum(1 for t in trips if t.partial_orders > 0),
            "avg_entry_slippage_pct": _mean(entry_slips),
            "avg_exit_slippage_pct": _mean(exit_slips),
            "pnl": str(sum((t.pnl for t in thin), ZERO)),
        },
        "forced_exits": {"trades": len(forced), "losses": len(forced_losses),
                         "pnl": str(sum((t.pnl for t in forced), ZERO)),
                         "loss_pnl": str(sum((t.pnl for t in forced_losses), ZERO))},
        "unfilled": [dict(u) for u in unfilled],
        "suggestions": suggestions,
    }
    return DailySummary(
        realized_pnl=total,
        trades_count=n,
        wins=wins,
        losses=losses,
        win_rate=(Decimal(wins) / n).quantize(Decimal("0.0001")) if n else None,
        avg_pnl=(total / n).quantize(Decimal("0.01")) if n else None,
        max_loss=min(negatives) if negatives else None,
        fees=sum((t.fees for t in trips), ZERO),
        taxes=sum((t.taxes for t in trips), ZERO),
        notes=notes,
        profit_factor=profit_factor([t.pnl for t in trips]),
        max_drawdown=max_drawdown([t.pnl for t in trips]),
    )
