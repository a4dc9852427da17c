"""Entry size and order type.

KIS reserves cash for a MARKET buy at the day's UPPER LIMIT price (상한가), not at the last price,
so a market buy sized at capital/price is refused for want of cash.  A market buy is sized against
the upper limit; a marketable LIMIT at the ask (plus a few ticks) uses the capital better at the
cost of possibly resting unfilled.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from stock_manager.services.strategy.port import EntryOrder
from stock_manager.shared.market_rules import Market, price_limits, round_to_tick, ticks_away

__all__ = ["EntryOrder", "size_entry", "upper_limit_of"]


def upper_limit_of(price: Decimal, upper_limit: Decimal | None, base_price: Decimal | None,
                   market: Market) -> Decimal:
    if upper_limit is not None:
        return upper_limit
    base = base_price if base_price is not None else price
    return Decimal(price_limits(int(base.to_integral_value(ROUND_HALF_UP)), market)[1])


def size_entry(capital: Decimal, price: Decimal, ask: Decimal | None, upper_limit: Decimal, *,
               order_type: str, market: Market = Market.KOSPI, slippage_ticks: int = 1) -> EntryOrder:
    if order_type == "MKT":
        qty = int((capital / upper_limit).to_integral_value(ROUND_DOWN))
        return EntryOrder(qty, "MKT", None, upper_limit)
    ref = ask if ask is not None else price
    limit = ticks_away(round_to_tick(int(ref.to_integral_value(ROUND_HALF_UP)), market, up=True),
                       slippage_ticks, market)
    limit_d = min(Decimal(limit), upper_limit)
    qty = int((capital / limit_d).to_integral_value(ROUND_DOWN))
    return EntryOrder(qty, "LMT", limit_d, limit_d)
