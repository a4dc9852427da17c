"""The built-in breakout as one implementation of the port.

The rules themselves stay in ``rules/scan.py``, ``rules/exits.py`` and ``rules/sizing.py`` (where
their tests are); this class only turns snapshots into their inputs, computing the indicators from
the candles with the reference definitions of ``rules/indicators.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from stock_manager.services.strategy.config import Params as BreakoutParams
from stock_manager.services.strategy.port import (
    EntryOrder,
    EntrySignal,
    ExitDecision,
    MarketSnapshot,
    PositionSnapshot,
)
from stock_manager.services.strategy.rules.exits import Holding, PriceSource, Quote, evaluate_exit
from stock_manager.services.strategy.rules.indicators import recent_high, sma
from stock_manager.services.strategy.rules.scan import ScanRow, evaluate
from stock_manager.services.strategy.rules.sizing import size_entry, upper_limit_of
from stock_manager.services.strategy.rules.universe import tradeable
from stock_manager.shared.market_rules import Market


def market_of(name: str) -> Market:
    try:
        return Market(name)
    except ValueError:
        return Market.KOSPI


def scan_row(m: MarketSnapshot, p: BreakoutParams) -> ScanRow:
    closes = [c.close for c in m.candles]
    return ScanRow(
        symbol=m.symbol, market=m.market, price=m.price, bid=m.bid, ask=m.ask, volume=m.volume, turnover=m.turnover,
        change_pct=m.change_pct, upper_limit=m.upper_limit, halted=m.halted, stale_flag=m.stale, ts=m.ts,
        n_bars=len(m.candles), sma_short=sma(closes, p.sma_short), sma_long=sma(closes, p.sma_long),
        recent_high=recent_high([c.high for c in m.candles], p.breakout_bars))


class Breakout:
    """Trend-following breakout: price over the short average, short over long, clearing the recent high."""

    name: ClassVar[str] = "breakout"
    version: ClassVar[str] = "v1"
    Params: ClassVar[type[BreakoutParams]] = BreakoutParams

    def bars(self, p: BreakoutParams) -> int:
        return max(p.sma_long, p.breakout_bars + 1)

    def universe(self, m: MarketSnapshot, p: BreakoutParams, now: datetime) -> Sequence[str]:
        return tradeable(m, p, now)

    def entry(self, m: MarketSnapshot, p: BreakoutParams, now: datetime) -> EntrySignal:
        return evaluate(scan_row(m, p), p, now)

    def exit(self, pos: PositionSnapshot, m: MarketSnapshot, p: BreakoutParams, now: datetime) -> ExitDecision:
        closes = [c.close for c in m.candles]
        h = Holding(qty=pos.qty, avg_price=pos.avg_price, entry_ts=pos.entry_ts, high_water=pos.high_water,
                    exit_stage=pos.exit_stage)
        q = Quote(m.price, sma(closes, p.sma_short), m.ts, PriceSource(m.source))
        return evaluate_exit(h, q, p, now)

    def size(self, m: MarketSnapshot, p: BreakoutParams) -> EntryOrder:
        market = market_of(m.market)
        upper = upper_limit_of(m.price, m.upper_limit, m.base_price, market)
        return size_entry(p.capital_per_trade, m.price, m.ask, upper, order_type=p.entry_order_type,
                          market=market, slippage_ticks=p.limit_slippage_ticks)
