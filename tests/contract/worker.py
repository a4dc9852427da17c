"""One service-like OS process for the cross-process contract tests.

    python -m tests.contract.worker

Reads one JSON line of settings on stdin, builds its own ``KisRestClient`` on the shared database
(``PgTokenStore``, ``PgRateLimiter``) as ``stock_manager.shared.broker`` does, prints ``ready``, waits for a
``go <wall time>`` line (so several processes start at the same instant), does its job and prints
one JSON line.  Modes:

* ``token``: obtain the access token and use it once.  ``max_token_wait`` 0 makes any second
  issue for the app key fail loudly (our own 1-per-minute guard or the broker's EGW00133).
* ``hammer``: ``tasks`` concurrent loops of inquire-price for ``warmup + seconds``; EGW00201 is
  not retried, so every one the broker sends is counted.  Answers are stamped with the wall
  clock, and every slot the limiter granted with its database-clock time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from datetime import datetime
from typing import Any

import httpx
from loguru import logger

from stock_manager.shared.clock import ScaledClock
from stock_manager.shared.db.pool import open_pool
from stock_manager.shared.kis.endpoints import KisEnv
from stock_manager.shared.kis.errors import KisError, RateLimited
from stock_manager.shared.kis.pg_ports import PgRateLimiter, PgTokenStore
from stock_manager.shared.kis.ports import Priority
from stock_manager.shared.kis.rest import KisCredentials, KisRestClient, KisRestSettings, RetryPolicy


class SlotLog:
    """The PgRateLimiter the client uses, noting the slot of every grant."""

    def __init__(self, inner: PgRateLimiter) -> None:
        self.inner = inner
        self.slots: list[float] = []

    async def acquire(self, priority: Priority) -> None:
        await self.inner.acquire(priority)
        self.slots.append(self.inner.last_slot)  # no await in between: this grant's slot


async def run(cfg: dict[str, Any]) -> dict[str, Any]:
    now = httpx.get(cfg["sim"] + "/sim/clock", timeout=10).json()
    clock = ScaledClock(datetime.fromisoformat(now["now"]), float(now["speed"]))
    creds = KisCredentials.of(cfg["app_key"], cfg["app_secret"], cfg["account"])
    env = KisEnv.REAL
    size = int(cfg.get("tasks", 1)) + 2
    pool = await open_pool(cfg["db"], min_size=size, max_size=size)
    try:
        limiter = SlotLog(PgRateLimiter(pool, creds.key_id(env), float(cfg["limit"])))
        settings = KisRestSettings(
            env=env,
            base_url=cfg["sim"],
            max_token_wait=float(cfg.get("max_token_wait", 65.0)),
            retry=RetryPolicy(rate_limited=()),
        )
        store = PgTokenStore(pool, cfg["db"], creds.app_secret)
        async with KisRestClient(settings, creds, store, limiter, clock=clock) as rest:
            if cfg["mode"] == "hammer":
                await rest.access_token()  # before the start, like a service that has been running
            print("ready", flush=True)
            start_at = float((await asyncio.to_thread(sys.stdin.readline)).split()[1])
            await asyncio.sleep(max(0.0, start_at - time.time()))
            if cfg["mode"] == "token":
                started = time.monotonic()
                token = await rest.access_token()
                await rest.inquire_price(cfg["symbol"])
                return {
                    "token_sha256": hashlib.sha256(token.value.get_secret_value().encode()).hexdigest(),
                    "seconds": time.monotonic() - started,
                }
            result = await hammer(rest, cfg, start_at + float(cfg["warmup"]) + float(cfg["seconds"]))
            return {**result, "slots": limiter.slots}
    finally:
        await pool.close()


async def hammer(rest: KisRestClient, cfg: dict[str, Any], end: float) -> dict[str, Any]:
    ok: list[float] = []
    limited = 0
    errors: list[str] = []

    async def loop() -> None:
        nonlocal limited
        while time.time() < end:
            try:
                await rest.inquire_price(cfg["symbol"], priority=Priority.ORDER)
            except RateLimited:
                limited += 1
            except KisError as exc:
                errors.append(str(exc))
            else:
                ok.append(time.time())

    await asyncio.gather(*(loop() for _ in range(int(cfg["tasks"]))))
    return {"ok": ok, "rate_limited": limited, "errors": errors[:5], "n_errors": len(errors)}


def main() -> None:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    cfg = json.loads(sys.stdin.readline())
    result = asyncio.run(run(cfg))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
