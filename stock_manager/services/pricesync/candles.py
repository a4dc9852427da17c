"""One-minute candles from ticks, merged batch by batch.

Each ingest batch is folded into partial bars (one per symbol and minute) that the database
merges into ``market.candles``: high/low by max/min, volume and turnover by sum, open and close by
the market time of the first and last tick.  Merging partial bars rather than overwriting whole
ones means a restart loses nothing that was written, and nothing needs the day's bars in memory.

A bar is closed (and immutable, by trigger) once its minute plus a grace period has passed on the
market clock.  Ticks for a bar that is already closed are late: they stay in ``market.ticks`` but
are not folded into the bar, because a closed bar must not change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

MINUTE = timedelta(minutes=1)


def bucket_of(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


@dataclass(slots=True)
class PartialBar:
    symbol: str
    bucket: datetime
    open: int
    open_ts: datetime
    high: int
    low: int
    close: int
    close_ts: datetime
    volume: int
    turnover: int
    n_ticks: int


def close_cutoff(now: datetime, grace_market_s: float, grace_wall_s: float, speed: float) -> datetime:
    """Bars whose minute ended at or before this market time are closed.

    The grace covers the time a print takes to reach us: a few market seconds, but never less
    than ``grace_wall_s`` of wall time (at 60x one wall second is a market minute).
    """
    grace = max(grace_market_s, grace_wall_s * max(speed, 0.0))
    return now - timedelta(seconds=grace)


def is_closed(bucket: datetime, cutoff: datetime) -> bool:
    return bucket + MINUTE <= cutoff


def fold(ticks: Iterable[Sequence[Any]], cutoff: datetime) -> tuple[list[PartialBar], int]:
    """Partial bars of ticks given in arrival order; returns (bars, number of late ticks).

    Each tick starts with (symbol, ts, price, qty); more fields may follow (``market.ticks``
    rows are passed as they are).  Ticks with the same timestamp keep arrival order: the first is
    the open, the last the close.
    """
    bars: dict[tuple[str, datetime], PartialBar] = {}
    late = 0
    last_ts: datetime | None = None
    bucket = cutoff
    closed = True
    for t in ticks:
        symbol, ts, price, qty = t[0], t[1], t[2], t[3]
        if ts is not last_ts:
            # consecutive prints usually share their timestamp object
            last_ts = ts
            bucket = ts.replace(second=0, microsecond=0)
            closed = bucket + MINUTE <= cutoff
        if closed:
            late += 1
            continue
        bar = bars.get((symbol, bucket))
        if bar is None:
            bars[(symbol, bucket)] = PartialBar(symbol, bucket, price, ts, price, price, price, ts, qty, price * qty, 1)
            continue
        if ts < bar.open_ts:
            bar.open, bar.open_ts = price, ts
        if ts >= bar.close_ts:
            bar.close, bar.close_ts = price, ts
        if price > bar.high:
            bar.high = price
        elif price < bar.low:
            bar.low = price
        bar.volume += qty
        bar.turnover += price * qty
        bar.n_ticks += 1
    return list(bars.values()), late


def merge(a: PartialBar, b: PartialBar) -> PartialBar:
    """What the database does on conflict (``upsert_candles``), for tests and replay."""
    first = a if a.open_ts <= b.open_ts else b
    last = b if b.close_ts >= a.close_ts else a
    return PartialBar(
        a.symbol,
        a.bucket,
        first.open,
        first.open_ts,
        max(a.high, b.high),
        min(a.low, b.low),
        last.close,
        last.close_ts,
        a.volume + b.volume,
        a.turnover + b.turnover,
        a.n_ticks + b.n_ticks,
    )
