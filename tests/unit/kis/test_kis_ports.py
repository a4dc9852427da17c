"""In-memory ports: the token-issue guard and the priority-aware token bucket."""

from __future__ import annotations

import asyncio

import pytest

from stock_manager.shared.kis.endpoints import KisEnv
from stock_manager.shared.kis.ports import InMemoryRateLimiter, InMemoryTokenStore, Priority

from .conftest import T0, Harness


class SteppedTime:
    """Monotonic time that moves only when the test says; sleepers wake on every step."""

    def __init__(self) -> None:
        self.now = 0.0
        self._tick = asyncio.Event()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await self._tick.wait()

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()
        for _ in range(5):
            await asyncio.sleep(0)


async def granted_now(limiter: InMemoryRateLimiter, priority: Priority) -> bool:
    try:
        await asyncio.wait_for(limiter.acquire(priority), 0.01)
    except TimeoutError:
        return False
    return True


async def count_immediate(limiter: InMemoryRateLimiter, priority: Priority) -> int:
    n = 0
    while await granted_now(limiter, priority):
        n += 1
    return n


async def test_lower_priorities_leave_headroom() -> None:
    clock = SteppedTime()
    limiter = InMemoryRateLimiter(10, monotonic=clock.monotonic, sleep=clock.sleep)
    assert await count_immediate(limiter, Priority.POLL) == 5  # keeps half the bucket
    assert await count_immediate(limiter, Priority.RECONCILE) == 2  # keeps a quarter
    assert await count_immediate(limiter, Priority.ORDER) == 3  # may empty it
    assert limiter.available < 1


async def test_waiting_order_is_served_before_waiting_poll() -> None:
    clock = SteppedTime()
    limiter = InMemoryRateLimiter(2, monotonic=clock.monotonic, sleep=clock.sleep)
    await limiter.acquire(Priority.ORDER)
    await limiter.acquire(Priority.ORDER)
    poll = asyncio.create_task(limiter.acquire(Priority.POLL))
    reconcile = asyncio.create_task(limiter.acquire(Priority.RECONCILE))
    await asyncio.sleep(0)
    order = asyncio.create_task(limiter.acquire(Priority.ORDER))
    await asyncio.sleep(0)

    await clock.advance(0.5)  # one token back
    assert order.done()
    assert not reconcile.done()
    assert not poll.done()

    await clock.advance(0.75)  # 1.5 tokens: enough for RECONCILE (keeps 0.5), not for POLL
    assert reconcile.done()
    assert not poll.done()

    await clock.advance(1.0)
    assert poll.done()


async def test_cancelled_waiter_does_not_block_lower_priorities() -> None:
    clock = SteppedTime()
    limiter = InMemoryRateLimiter(1, monotonic=clock.monotonic, sleep=clock.sleep)
    await limiter.acquire(Priority.ORDER)
    order = asyncio.create_task(limiter.acquire(Priority.ORDER))
    await asyncio.sleep(0)
    order.cancel()
    with pytest.raises(asyncio.CancelledError):
        await order
    poll = asyncio.create_task(limiter.acquire(Priority.POLL))
    await clock.advance(1.0)
    assert poll.done()


def test_limiter_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        InMemoryRateLimiter(0)


async def test_issue_guard_is_exclusive_and_attempts_survive_failures() -> None:
    store = InMemoryTokenStore()
    order: list[str] = []

    async def holder() -> None:
        async with store.issue_guard("k") as guard:
            order.append("a-in")
            await guard.record_attempt(T0)
            await asyncio.sleep(0.01)
            order.append("a-out")
            raise RuntimeError("token request failed")

    async def waiter() -> None:
        await asyncio.sleep(0)
        async with store.issue_guard("k") as guard:
            order.append("b-in")
            assert guard.last_attempt_at == T0

    results = await asyncio.gather(holder(), waiter(), return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert order == ["a-in", "a-out", "b-in"]


async def test_concurrent_processes_issue_one_token(harness: Harness) -> None:
    clients = [harness.client(KisEnv.PAPER) for _ in range(3)]
    await asyncio.gather(*(c.inquire_price("005930") for c in clients))
    for c in clients:
        await c.aclose()
    assert len(harness.kis.calls("/oauth2/tokenP")) == 1
