"""Universe filters and the entry signal.

Filters exclude what cannot be traded safely (halted, stale, thin, wide, out of band, too close to
the upper limit); the signal is a trend-following breakout: price above the short moving average,
short above long, and price clearing the recent high.  Every evaluation keeps its inputs so the
daily summary can tell which signals led to winners and which to losers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from stock_manager.services.strategy.config import Params
from stock_manager.services.strategy.port import EntrySignal, MarketSnapshot, Strategy, StrategyParams
from stock_manager.services.strategy.rules.indicators import pct
from stock_manager.services.strategy.rules.market_state import EntryGates, entry_refusals, market_state_inputs
from stock_manager.services.strategy.rules.universe import failed_filters, spread_pct

__all__ = ["Evaluation", "ScanOutcome", "ScanRow", "evaluate", "filters_failed", "run_scan", "scan", "spread_pct",
           "to_store"]


@dataclass(frozen=True)
class ScanRow:
    symbol: str
    market: str
    price: Decimal
    bid: Decimal | None
    ask: Decimal | None
    volume: int | None
    turnover: Decimal | None
    change_pct: Decimal | None
    upper_limit: Decimal | None
    halted: bool
    stale_flag: bool
    ts: datetime
    n_bars: int
    sma_short: Decimal | None
    sma_long: Decimal | None
    recent_high: Decimal | None


Evaluation = EntrySignal  # the breakout's name for the port's entry verdict


def filters_failed(row: ScanRow, p: Params, now: datetime) -> list[str]:
    """Names of the filters ``row`` fails; empty means it is tradeable."""
    return failed_filters(halted=row.halted, stale=row.stale_flag, age_s=(now - row.ts).total_seconds(),
                          price=row.price, volume=row.volume, turnover=row.turnover, bid=row.bid, ask=row.ask,
                          change_pct=row.change_pct, upper_limit=row.upper_limit, p=p)


def evaluate(row: ScanRow, p: Params, now: datetime) -> Evaluation:
    failed = filters_failed(row, p, now)
    sp = spread_pct(row.bid, row.ask)
    inputs: dict[str, Any] = {
        "price": str(row.price),
        "volume": row.volume,
        "turnover": str(row.turnover) if row.turnover is not None else None,
        "change_pct": str(row.change_pct) if row.change_pct is not None else None,
        "spread_pct": round(float(sp), 4) if sp is not None else None,
        "n_bars": row.n_bars,
        "sma_short": str(round(row.sma_short, 2)) if row.sma_short is not None else None,
        "sma_long": str(round(row.sma_long, 2)) if row.sma_long is not None else None,
        "recent_high": str(row.recent_high) if row.recent_high is not None else None,
    }
    if failed:
        return Evaluation(row.symbol, False, False, Decimal(0), tuple(failed), inputs)
    enough = row.n_bars >= max(p.sma_long, p.breakout_bars + 1)
    if not enough or row.sma_short is None or row.sma_long is None or row.recent_high is None:
        return Evaluation(row.symbol, True, False, Decimal(0), ("not_enough_bars",), inputs)
    trend = pct(row.sma_short, row.sma_long)
    breakout = pct(row.price, row.recent_high)
    above_short = row.price > row.sma_short
    inputs.update(trend_pct=round(float(trend), 4), breakout_pct=round(float(breakout), 4),
                  above_short=above_short)
    signal = above_short and trend > 0 and breakout > 0
    # stronger breakouts in a steeper trend first; liquidity breaks ties
    score = (breakout + trend) if signal else Decimal(0)
    why = () if signal else tuple(
        n for n, ok in (("below_short_ma", above_short), ("no_trend", trend > 0), ("no_breakout", breakout > 0))
        if not ok
    )
    return Evaluation(row.symbol, True, signal, score.quantize(Decimal("0.0001")), why, inputs)


@dataclass(frozen=True)
class ScanOutcome:
    evaluations: list[Evaluation]
    universe: int
    excluded: dict[str, int]
    passed: int
    signals: int
    # the symbols the product refused before the strategy saw them, with the reasons
    refused: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def scan(rows: list[ScanRow], p: Params, now: datetime) -> ScanOutcome:
    return outcome_of([evaluate(r, p, now) for r in rows])


def judge(strategy: Strategy, m: MarketSnapshot, p: StrategyParams, now: datetime) -> EntrySignal:
    """The strategy's universe filter, then (only if it passed) its entry signal.

    A strategy that raises on one symbol loses that symbol, not the scan: the rest of the universe
    is still judged, and the scan's exclusions count ``strategy_error``.
    """
    try:
        failed = tuple(strategy.universe(m, p, now))
        if failed:
            return EntrySignal(m.symbol, False, False, Decimal(0), failed, {"price": str(m.price)})
        e = strategy.entry(m, p, now)
    except Exception as err:
        return EntrySignal(m.symbol, False, False, Decimal(0), ("strategy_error",),
                           {"price": str(m.price), "error": f"{type(err).__name__}: {err}"[:300]})
    if e.symbol != m.symbol:
        return EntrySignal(m.symbol, False, False, Decimal(0), ("strategy_error",),
                           {"price": str(m.price), "error": f"entry answered for {e.symbol}"})
    return EntrySignal(e.symbol, True, e.signal, e.score, e.rejected_by, e.inputs)


def run_scan(strategy: Strategy, snaps: Sequence[MarketSnapshot], p: StrategyParams, now: datetime,
             gates: EntryGates | None = None) -> ScanOutcome:
    """One scan of the universe through the port.

    With ``gates``, what the market forbids (a designation, a VI, a price near a static VI trigger:
    ``rules/market_state.py``) is refused first, whatever the strategy would say of it.
    """
    evals: list[EntrySignal] = []
    refused: dict[str, tuple[str, ...]] = {}
    for m in snaps:
        why = tuple(entry_refusals(m, gates)) if gates is not None else ()
        if why:
            refused[m.symbol] = why
            evals.append(EntrySignal(m.symbol, False, False, Decimal(0), why, market_state_inputs(m)))
        else:
            evals.append(judge(strategy, m, p, now))
    return outcome_of(evals, refused)


def outcome_of(evals: list[EntrySignal], refused: Mapping[str, tuple[str, ...]] | None = None) -> ScanOutcome:
    excluded: dict[str, int] = {}
    for e in evals:
        if not e.passed:
            for f in e.rejected_by:
                excluded[f] = excluded.get(f, 0) + 1
    passed = sum(1 for e in evals if e.passed)
    signals = sum(1 for e in evals if e.signal)
    return ScanOutcome(evals, len(evals), excluded, passed, signals, dict(refused or {}))


def to_store(outcome: ScanOutcome, limit: int) -> list[Evaluation]:
    """What goes into trade.candidates: every signal, then the best near-misses up to ``limit``."""
    sig = sorted((e for e in outcome.evaluations if e.signal), key=lambda e: e.score, reverse=True)
    rest = [e for e in outcome.evaluations if e.passed and not e.signal]
    rest.sort(key=lambda e: (e.inputs.get("breakout_pct") or -1e9), reverse=True)
    return sig + rest[: max(0, limit - len(sig))]
