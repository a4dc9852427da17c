"""Forced liquidation: when it applies, in what order, and how much is still to sell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from shared.clock import kst
from shared.market_rules import SESSION_CLOSE, Phase, phase_at


@dataclass(frozen=True)
class LiquidityView:
    symbol: str
    qty: int
    turnover: Decimal | None
    spread_pct: Decimal | None


def liquidation_start(lead_min: float) -> time:
    secs = SESSION_CLOSE.hour * 3600 + SESSION_CLOSE.minute * 60 - round(lead_min * 60)
    return time(secs // 3600, secs % 3600 // 60, secs % 60)


def in_liquidation_window(now: datetime, lead_min: float) -> bool:
    """From close - lead until the close on a trading day (the closing auction included)."""
    if phase_at(now) not in (Phase.CONTINUOUS, Phase.CLOSING_AUCTION):
        return False
    return kst(now).time() >= liquidation_start(lead_min)


def after_close(now: datetime) -> bool:
    """The regular session of ``now``'s day is over (or it is a weekend)."""
    local = kst(now)
    return local.weekday() >= 5 or local.time() >= SESSION_CLOSE


def flatten_requested(state: str, reason: str | None) -> bool:
    return state == "REDUCING" and (reason or "").upper().startswith("FLATTEN")


def least_liquid_first(views: list[LiquidityView]) -> list[LiquidityView]:
    """The thinnest books need the most time to sell, so they go first."""
    return sorted(views, key=lambda v: (v.turnover if v.turnover is not None else Decimal(-1),
                                        -(v.spread_pct or Decimal(0)), v.symbol))


def remainder(position_qty: int, open_sell_qty: int) -> int:
    """Shares not yet covered by an order on its way to the market."""
    return max(0, position_qty - max(0, open_sell_qty))
