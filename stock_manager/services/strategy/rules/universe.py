"""The universe filters most strategies share: what cannot be traded safely, whatever the signal.

Halted, stale, thin, wide, out of the price band, too close to the upper limit.  They are a
helper a strategy may use, not a gate the product imposes: a strategy owns its universe.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from stock_manager.services.strategy.port import MarketSnapshot, StrategyParams


class UniverseParams(StrategyParams):
    min_price: Decimal = Decimal(1_000)
    max_price: Decimal = Decimal(500_000)
    min_volume: int = Field(default=20_000, ge=0)
    min_turnover: Decimal = Decimal(500_000_000)
    max_spread_pct: Decimal = Decimal("0.6")
    max_change_pct: Decimal = Decimal(20)
    max_price_age_s: float = Field(default=120.0, gt=0)


def spread_pct(bid: Decimal | None, ask: Decimal | None) -> Decimal | None:
    if bid is None or ask is None or bid <= 0 or ask < bid:
        return None
    mid = (bid + ask) / 2
    return (ask - bid) / mid * 100


def failed_filters(*, halted: bool, stale: bool, age_s: float, price: Decimal, volume: int | None,
                   turnover: Decimal | None, bid: Decimal | None, ask: Decimal | None, change_pct: Decimal | None,
                   upper_limit: Decimal | None, p: UniverseParams) -> list[str]:
    """Names of the filters failed, sorted; empty means tradeable."""
    failed: list[str] = []
    if halted:
        failed.append("halted")
    if stale or age_s > p.max_price_age_s:
        failed.append("stale")
    if not (p.min_price <= price <= p.max_price):
        failed.append("price_band")
    if (volume or 0) < p.min_volume:
        failed.append("min_volume")
    if (turnover or Decimal(0)) < p.min_turnover:
        failed.append("min_turnover")
    sp = spread_pct(bid, ask)
    if sp is None or sp > p.max_spread_pct:
        failed.append("spread")
    if change_pct is not None and change_pct > p.max_change_pct:
        failed.append("near_upper_limit")
    if upper_limit is not None and price >= upper_limit:
        failed.append("near_upper_limit")
    return sorted(set(failed))


def tradeable(m: MarketSnapshot, p: UniverseParams, now: datetime) -> list[str]:
    """The shared filters on a snapshot."""
    return failed_filters(halted=m.halted, stale=m.stale, age_s=(now - m.ts).total_seconds(), price=m.price,
                          volume=m.volume, turnover=m.turnover, bid=m.bid, ask=m.ask, change_pct=m.change_pct,
                          upper_limit=m.upper_limit, p=p)
