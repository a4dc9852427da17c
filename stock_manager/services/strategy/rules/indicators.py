"""Indicators on 1-minute candles.

The breakout computes them from the candles in its snapshots; other strategies may use them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal


def sma(closes_newest_first: Sequence[Decimal], n: int) -> Decimal | None:
    """Mean of the newest ``n`` closes; None until there are ``n`` of them."""
    if n <= 0 or len(closes_newest_first) < n:
        return None
    return sum(closes_newest_first[:n], Decimal(0)) / n


def recent_high(highs_newest_first: Sequence[Decimal], n: int) -> Decimal | None:
    """Highest high of the ``n`` bars before the newest one (the level a breakout must clear)."""
    prior = highs_newest_first[1 : n + 1]
    return max(prior) if prior else None


def pct(a: Decimal, b: Decimal) -> Decimal:
    """How far ``a`` is above ``b``, in percent."""
    return (a / b - 1) * 100
