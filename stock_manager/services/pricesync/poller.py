"""REST polling: what the WebSocket does not cover, most important first, then the universe.

The REST budget is per app key and shared with Strategy and Execution (``ops.rate_limits``);
polls go out at ``Priority.POLL``, the lowest, so orders are never held up by prices.  What is
polled, in order:

1. watched symbols without a healthy trade stream (all of them while the WebSocket is down), by
   watch class, each often enough to stay FRESH;
2. streamed symbols that have been quiet for most of their WS window, to confirm the price;
3. a slow sweep over the whole universe with what the sweep rate allows, so every symbol's
   ``prices_best`` row is refreshed over time.

``PollScheduler`` is the pure part (which symbol next); ``Poller`` runs the requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
from loguru import logger

from stock_manager.shared.kis.errors import KisError
from stock_manager.shared.kis.models import Quote
from stock_manager.shared.kis.ports import Priority

from .freshness import FreshnessRules
from .planner import WatchClass, WatchItem


@dataclass(frozen=True, slots=True)
class PollConfig:
    min_interval_s: float = 0.5  # wall seconds between two polls of one symbol, whatever the speed
    keep_fresh_margin: float = 0.5  # poll a watched symbol after this share of its REST window
    verify_margin: float = 0.6  # poll a quiet streamed symbol after this share of its WS window
    sweep_per_s: float = 2.0
    error_backoff_max_s: float = 60.0


@dataclass
class _Track:
    last_poll: float | None = None
    errors: int = 0
    retry_at: float = 0.0


@dataclass
class PollScheduler:
    config: PollConfig
    rules: FreshnessRules
    watch: list[WatchItem] = field(default_factory=list)
    universe: list[str] = field(default_factory=list)
    seed: set[str] = field(default_factory=set)  # symbols to poll once (e.g. no master row yet)
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _in_flight: set[str] = field(default_factory=set)
    _cursor: int = 0
    _sweep_tokens: float = 0.0
    _sweep_mark: float | None = None

    def track(self, symbol: str) -> _Track:
        t = self._tracks.get(symbol)
        if t is None:
            t = self._tracks[symbol] = _Track()
        return t

    def pick(
        self,
        now: float,
        speed: float,
        streamed: frozenset[str],
        last_seen: Callable[[str], float | None],
    ) -> tuple[str, str] | None:
        """The next (symbol, reason) to poll, or None when nothing is due."""
        speed = max(speed, 1e-6)
        keep_fresh = max(self.config.min_interval_s,
                         self.rules.rest.market_seconds(speed) * self.config.keep_fresh_margin / speed)
        verify_after = max(self.config.min_interval_s,
                           self.rules.ws.market_seconds(speed) * self.config.verify_margin / speed)

        if self.seed:
            # unknown symbols first, in watch order (a position before a watch-list entry)
            for item in self.watch:
                if item.symbol in self.seed and self._ready(item.symbol, now):
                    return item.symbol, "seed"
            for sym in sorted(self.seed):
                if self._ready(sym, now):
                    return sym, "seed"

        best: tuple[tuple[int, float], str] | None = None
        verify: tuple[float, str] | None = None
        for item in self.watch:
            sym = item.symbol
            if not self._ready(sym, now):
                continue
            t = self._tracks.get(sym)
            polled_ago = now - t.last_poll if t is not None and t.last_poll is not None else float("inf")
            if sym in streamed:
                seen = last_seen(sym)
                quiet = now - seen if seen is not None else float("inf")
                if min(quiet, polled_ago) >= verify_after and (verify is None or -min(quiet, polled_ago) < verify[0]):
                    verify = (-min(quiet, polled_ago), sym)
                continue
            if polled_ago < keep_fresh:
                continue
            key = (int(item.cls), -polled_ago)
            if best is None or key < best[0]:
                best = (key, sym)
        if best is not None:
            return best[1], WatchClass(best[0][0]).name.lower()
        if verify is not None:
            return verify[1], "verify"
        return self._sweep(now, streamed)

    def _ready(self, sym: str, now: float) -> bool:
        if sym in self._in_flight:
            return False
        t = self._tracks.get(sym)
        return t is None or t.retry_at <= now

    def _sweep(self, now: float, streamed: frozenset[str]) -> tuple[str, str] | None:
        rate = self.config.sweep_per_s
        if rate <= 0 or not self.universe:
            return None
        if self._sweep_mark is None:
            self._sweep_mark = now
            self._sweep_tokens = 1.0
        self._sweep_tokens = min(max(1.0, rate), self._sweep_tokens + (now - self._sweep_mark) * rate)
        self._sweep_mark = now
        if self._sweep_tokens < 1.0:
            return None
        watched = {w.symbol for w in self.watch}
        n = len(self.universe)
        for _ in range(n):
            sym = self.universe[self._cursor % n]
            self._cursor = (self._cursor + 1) % n
            if sym in streamed or sym in watched or not self._ready(sym, now):
                continue
            self._sweep_tokens -= 1.0
            return sym, "sweep"
        return None

    def started(self, symbol: str) -> None:
        self._in_flight.add(symbol)

    def finished(self, symbol: str, now: float, ok: bool) -> None:
        self._in_flight.discard(symbol)
        t = self.track(symbol)
        if ok:
            t.last_poll = now
            t.errors = 0
            t.retry_at = 0.0
            self.seed.discard(symbol)
        else:
            t.errors += 1
            t.retry_at = now + min(self.config.error_backoff_max_s, 0.5 * 2 ** min(t.errors, 10))


class QuoteSource(Protocol):
    async def inquire_price(self, symbol: str, *, market: str = "J", priority: Priority = Priority.POLL) -> Quote: ...


@dataclass
class PollStats:
    ok: int = 0
    errors: int = 0
    last_ok_mono: float | None = None
    last_error: str | None = None
    by_reason: dict[str, int] = field(default_factory=dict)


class Poller:
    """``workers`` tasks taking the scheduler's next symbol; the rate limiter paces them."""

    def __init__(
        self,
        rest: QuoteSource,
        scheduler: PollScheduler,
        *,
        on_quote: Callable[[str, Quote], Awaitable[None] | None],
        streamed: Callable[[], frozenset[str]],
        last_seen: Callable[[str], float | None],
        speed: Callable[[], float],
        workers: int = 2,
        idle_s: float = 0.1,
    ) -> None:
        self._rest = rest
        self.scheduler = scheduler
        self._on_quote = on_quote
        self._streamed = streamed
        self._last_seen = last_seen
        self._speed = speed
        self._workers = workers
        self._idle_s = idle_s
        self.stats = PollStats()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for i in range(self._workers):
                tg.create_task(self._worker(), name=f"poll-{i}")

    async def _worker(self) -> None:
        while True:
            choice = self.scheduler.pick(time.monotonic(), self._speed(), self._streamed(), self._last_seen)
            if choice is None:
                await asyncio.sleep(self._idle_s)
                continue
            symbol, reason = choice
            self.scheduler.started(symbol)
            ok = False
            try:
                quote = await self._rest.inquire_price(symbol, priority=Priority.POLL)
                result = self._on_quote(symbol, quote)
                if result is not None:
                    await result
                ok = True
                self.stats.ok += 1
                self.stats.last_ok_mono = time.monotonic()
                self.stats.by_reason[reason] = self.stats.by_reason.get(reason, 0) + 1
            except KisError as exc:
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:200]
                logger.debug("poll {} ({}) failed: {}", symbol, reason, self.stats.last_error)
            except psycopg.OperationalError as exc:
                # the shared request budget lives in the database; without it, wait rather than guess
                self.stats.errors += 1
                self.stats.last_error = f"request budget unavailable: {type(exc).__name__}"
                logger.warning("poll {} postponed: {}", symbol, self.stats.last_error)
                await asyncio.sleep(1.0)
            finally:
                self.scheduler.finished(symbol, time.monotonic(), ok)
