"""Mean reversion to the VWAP: buy a liquid name stretched below its volume-weighted average price
once it turns up, sell when it is back at the average.

It is here to show that the port holds a strategy unlike the breakout: it buys weakness, not
strength, and its exit target moves with the day's VWAP instead of a fixed gain.  Registered as
the entry point ``vwap-reversion`` (``SM_STRATEGY=vwap-reversion``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, ClassVar

from pydantic import Field

from stock_manager.services.strategy.port import (
    Candle,
    EntryOrder,
    EntrySignal,
    ExitDecision,
    ExitKind,
    ExitReason,
    MarketSnapshot,
    PositionSnapshot,
)
from stock_manager.services.strategy.rules.indicators import pct
from stock_manager.services.strategy.rules.universe import UniverseParams, tradeable


class VwapParams(UniverseParams):
    bars: int = Field(default=60, ge=5, le=400)  # minutes the VWAP is taken over
    min_bars: int = Field(default=15, ge=2, le=400)
    entry_below_pct: Decimal = Field(default=Decimal("1.0"), gt=0)  # how stretched below VWAP to buy
    max_below_pct: Decimal = Field(default=Decimal(5), gt=0)  # further than this is news, not noise
    exit_at_vwap_pct: Decimal = Decimal(0)  # sell once price is this far from VWAP (0: at it)
    stop_loss_pct: Decimal = Field(default=Decimal("1.5"), gt=0, le=100)
    max_hold_min: float = Field(default=45.0, gt=0)


def vwap(candles: Sequence[Candle]) -> Decimal | None:
    """Volume-weighted typical price of ``candles``; None without volume."""
    vol = sum(c.volume for c in candles)
    if vol <= 0:
        return None
    return sum(((c.high + c.low + c.close) / 3 * c.volume for c in candles), Decimal(0)) / vol


class VwapReversion:
    name: ClassVar[str] = "vwap-reversion"
    version: ClassVar[str] = "v1"
    Params: ClassVar[type[VwapParams]] = VwapParams

    def bars(self, p: VwapParams) -> int:
        return p.bars

    def universe(self, m: MarketSnapshot, p: VwapParams, now: datetime) -> Sequence[str]:
        return tradeable(m, p, now)

    def entry(self, m: MarketSnapshot, p: VwapParams, now: datetime) -> EntrySignal:
        v = vwap(m.candles)
        inputs: dict[str, Any] = {"price": str(m.price), "n_bars": len(m.candles),
                                  "vwap": str(round(v, 2)) if v is not None else None}
        if v is None or len(m.candles) < p.min_bars:
            return EntrySignal(m.symbol, True, False, Decimal(0), ("not_enough_bars",), inputs)
        below = -pct(m.price, v)
        last = m.candles[0]
        turning = m.price > last.open
        inputs.update(below_vwap_pct=round(float(below), 4), turning_up=turning)
        why = tuple(n for n, ok in (("not_stretched", below >= p.entry_below_pct),
                                    ("too_far", below <= p.max_below_pct), ("still_falling", turning)) if not ok)
        signal = not why
        # the further below the average (within the limit), the more room to revert
        score = below.quantize(Decimal("0.0001")) if signal else Decimal(0)
        return EntrySignal(m.symbol, True, signal, score, why, inputs)

    def exit(self, pos: PositionSnapshot, m: MarketSnapshot, p: VwapParams, now: datetime) -> ExitDecision:
        v = vwap(m.candles)
        gain = pct(m.price, pos.avg_price)
        held_s = (now - pos.entry_ts).total_seconds()
        inputs: dict[str, Any] = {"price": str(m.price), "vwap": str(round(v, 2)) if v is not None else None,
                                  "gain_pct": round(float(gain), 4), "held_s": round(held_s, 1),
                                  "price_source": m.source}

        def full(reason: ExitReason) -> ExitDecision:
            return ExitDecision(ExitKind.FULL, reason, pos.qty, inputs)

        if gain <= -p.stop_loss_pct:
            return full(ExitReason.STOP_LOSS)
        if v is not None and pct(m.price, v) >= p.exit_at_vwap_pct:
            return full(ExitReason.TAKE_PROFIT)
        if held_s >= p.max_hold_min * 60:
            return full(ExitReason.TIME_EXIT)
        return ExitDecision(ExitKind.NONE, None, 0, inputs)

    def size(self, m: MarketSnapshot, p: VwapParams) -> EntryOrder:
        """A limit at the ask: buying a dip needs no chase, and a limit reserves only its own price."""
        ref = m.ask if m.ask is not None else m.price
        qty = int((p.capital_per_trade / ref).to_integral_value(ROUND_DOWN))
        return EntryOrder(qty, "LMT", ref, ref)
