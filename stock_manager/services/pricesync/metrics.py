"""Counters and a latency histogram cheap enough to touch once per tick."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


class LatencyHistogram:
    """Millisecond buckets up to ``limit_ms``; percentiles without keeping samples."""

    def __init__(self, limit_ms: int = 10_000) -> None:
        self._counts = [0] * (limit_ms + 1)
        self._limit = limit_ms
        self.total = 0
        self.max_ms = 0.0

    def add_many(self, now: float, received: list[float]) -> None:
        """Record ``now - r`` (seconds, monotonic) for every receive time ``r``."""
        counts, limit = self._counts, self._limit
        worst = 0.0
        for r in received:
            ms = (now - r) * 1000.0
            if ms > worst:
                worst = ms
            i = int(ms)
            counts[i if i < limit else limit] += 1
        self.total += len(received)
        if worst > self.max_ms:
            self.max_ms = worst

    def percentile(self, p: float) -> float:
        """Upper edge (ms) of the bucket holding the ``p``-th percentile, or 0 when empty."""
        if not self.total:
            return 0.0
        rank = p / 100.0 * self.total
        seen = 0
        for i, c in enumerate(self._counts):
            seen += c
            if seen >= rank and c:
                return float(i + 1)
        return float(self._limit)

    def reset(self) -> None:
        self._counts = [0] * (self._limit + 1)
        self.total = 0
        self.max_ms = 0.0


@dataclass
class IngestMetrics:
    ticks_in: int = 0
    ticks_written: int = 0
    prices_written: int = 0
    batches: int = 0
    late_ticks: int = 0
    rejected: int = 0
    dropped: int = 0
    failed_batches: int = 0
    last_batch_ms: float = 0.0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    write_ms: LatencyHistogram = field(default_factory=LatencyHistogram)  # one write transaction each
    window: LatencyHistogram = field(default_factory=LatencyHistogram)  # since the last heartbeat
    _rate_mark: tuple[float, int] = field(default_factory=lambda: (time.monotonic(), 0))

    def rate(self) -> float:
        """Ticks written per second since the previous call."""
        now = time.monotonic()
        then, count = self._rate_mark
        self._rate_mark = (now, self.ticks_written)
        return (self.ticks_written - count) / (now - then) if now > then else 0.0
