"""What the KIS client needs from the rest of the system, as small Protocols.

PriceSync, Strategy and Execution are separate processes sharing one app key, and KIS limits are
per app key: one token issue per minute, 20 (real) / 2 (paper) requests per second.  So the token
cache and the request budget must be shared across processes.  The PostgreSQL implementations do
that; the in-memory ones here serve one process and the unit tests (cosmicpython's fakes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Protocol

from pydantic import SecretStr

# --- access token cache -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedToken:
    """An access token as shared between processes.  ``key_id`` is a non-secret app-key label."""

    key_id: str
    token: SecretStr
    expires_at: datetime
    issued_at: datetime


class IssueGuard(Protocol):
    """Held while one process decides whether to (and does) ask KIS for a token.

    ``last_attempt_at`` is when any process last *asked* KIS for a token for this key (successful
    or not), as recorded by ``record_attempt``.  The client waits until a minute has passed since
    then before asking again, which is how the 1-per-minute rule holds across processes.
    """

    @property
    def last_attempt_at(self) -> datetime | None: ...

    async def record_attempt(self, at: datetime) -> None:
        """Persist the attempt time *before* the request is sent.

        It must stay recorded even if the request (or the body of the guard) then fails, and be
        visible to other processes as soon as this returns.
        """
        ...


class TokenStore(Protocol):
    """Shared cache of access tokens, keyed by app-key id.

    Contract:
    - ``get_cached`` returns the newest saved token for ``key_id`` (expired or not; the client
      judges expiry with its clock), or None.  It never blocks on ``issue_guard``.
    - ``issue_guard`` is mutually exclusive per ``key_id`` across every process using the store:
      a second entrant waits until the first exits (normally or by exception, or because its
      process died: a PostgreSQL advisory lock or row lock tied to a connection does this).
      Inside it the client re-reads the cache, checks ``last_attempt_at``, records an attempt,
      calls KIS and saves.
    - ``save`` upserts the token for ``token.key_id`` and is durable when it returns.
    """

    async def get_cached(self, key_id: str) -> CachedToken | None: ...

    def issue_guard(self, key_id: str) -> AbstractAsyncContextManager[IssueGuard]: ...

    async def save(self, token: CachedToken) -> None: ...


class _MemoryGuard:
    def __init__(self, store: InMemoryTokenStore, key_id: str) -> None:
        self._store = store
        self._key_id = key_id

    @property
    def last_attempt_at(self) -> datetime | None:
        return self._store.attempts.get(self._key_id)

    async def record_attempt(self, at: datetime) -> None:
        self._store.attempts[self._key_id] = at


class InMemoryTokenStore:
    """One process's token cache; share an instance between clients to mimic several processes."""

    def __init__(self) -> None:
        self.tokens: dict[str, CachedToken] = {}
        self.attempts: dict[str, datetime] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get_cached(self, key_id: str) -> CachedToken | None:
        return self.tokens.get(key_id)

    @asynccontextmanager
    async def _guard(self, key_id: str) -> AsyncIterator[IssueGuard]:
        lock = self._locks.setdefault(key_id, asyncio.Lock())
        async with lock:
            yield _MemoryGuard(self, key_id)

    def issue_guard(self, key_id: str) -> AbstractAsyncContextManager[IssueGuard]:
        return self._guard(key_id)

    async def save(self, token: CachedToken) -> None:
        self.tokens[token.key_id] = token


# --- request budget ---------------------------------------------------------------------------------


class Priority(IntEnum):
    """Who goes first when the per-second budget is short: an exit order beats a price poll."""

    POLL = 0
    RECONCILE = 1
    ORDER = 2


class RateLimiter(Protocol):
    """Grants permission to send one KIS request.

    Contract: ``acquire`` returns when a request may be sent now without pushing the app key over
    its per-second limit, counting every process that shares the key.  Higher priorities are never
    starved by lower ones: a waiting ORDER is served before any POLL, and lower priorities leave
    headroom so an ORDER rarely waits at all.  Cancellation while waiting consumes nothing.
    """

    async def acquire(self, priority: Priority) -> None: ...


# Fraction of the bucket each priority must leave untouched for higher ones.
DEFAULT_RESERVE: dict[Priority, float] = {
    Priority.ORDER: 0.0,
    Priority.RECONCILE: 0.25,
    Priority.POLL: 0.5,
}


class InMemoryRateLimiter:
    """A per-process token bucket that keeps headroom for higher priorities.

    ``rate`` tokens per second refill a bucket of ``capacity`` (default: one second's worth).  A
    request of priority p may take a token only if at least ``reserve[p] * capacity`` remain
    after it, and only while no higher priority is waiting.
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        reserve: dict[Priority, float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._rate = rate
        self._capacity = max(1.0, capacity if capacity is not None else rate)
        self._reserve = {p: (reserve or DEFAULT_RESERVE).get(p, 0.0) * self._capacity for p in Priority}
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = self._capacity
        self._stamp = monotonic()
        self._waiting: dict[Priority, int] = dict.fromkeys(Priority, 0)

    @property
    def available(self) -> float:
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def _higher_waiting(self, priority: Priority) -> bool:
        return any(self._waiting[p] for p in Priority if p > priority)

    async def acquire(self, priority: Priority) -> None:
        self._waiting[priority] += 1
        try:
            while True:
                self._refill()
                need = min(1.0 + self._reserve[priority], self._capacity)
                if self._tokens >= need and not self._higher_waiting(priority):
                    self._tokens -= 1.0
                    return
                deficit = max(need - self._tokens, 0.0)
                # Re-check at least every token interval so a departing higher waiter is noticed.
                await self._sleep(max(deficit / self._rate, 0.001) if deficit else 1.0 / self._rate)
        finally:
            self._waiting[priority] -= 1
