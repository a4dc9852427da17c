"""The KIS client's ports backed by PostgreSQL, so every process sharing an app key shares its
token and its request budget.

Token: stored encrypted (AES-256-GCM, key derived from the app secret with HKDF) in
``ops.broker_tokens``; issuing is serialised by a session advisory lock, which the server releases
by itself if the holding process dies.  Budget: ``ops.rate_limits`` keeps the recent grant times
per app key, and one locking statement grants a slot or says how long to wait (``take_rate_slot``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from pydantic import SecretStr

from stock_manager.shared.db.pool import Pool, connect
from stock_manager.shared.kis.ports import DEFAULT_RESERVE, CachedToken, IssueGuard, Priority
from stock_manager.shared.locks import token_issue_params
from stock_manager.shared.resources import package_path
from stock_manager.shared.sql import load_queries

Q = load_queries(package_path(__package__, "sql", "broker_state.sql"))


class TokenCipher:
    """Seals the access token at rest: a database dump alone reveals nothing usable."""

    def __init__(self, app_secret: SecretStr) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"stock-manager", info=b"kis access token").derive(
            app_secret.get_secret_value().encode()
        )
        self._aead = AESGCM(key)

    def seal(self, token: SecretStr, key_id: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, token.get_secret_value().encode(), key_id.encode())

    def open(self, blob: bytes, key_id: str) -> SecretStr:
        return SecretStr(self._aead.decrypt(blob[:12], blob[12:], key_id.encode()).decode())


class _PgGuard:
    def __init__(self, key_id: str, last: datetime | None, conn: AsyncConnection[DictRow]) -> None:
        self._key_id = key_id
        self._last = last
        self._conn = conn

    @property
    def last_attempt_at(self) -> datetime | None:
        return self._last

    async def record_attempt(self, at: datetime) -> None:
        # autocommit: durable and visible to every process before the request goes out
        await self._conn.execute(Q["record_token_attempt"], {"key_id": self._key_id, "at": at})
        self._last = at


class PgTokenStore:
    def __init__(self, pool: Pool, conninfo: str, app_secret: SecretStr) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._cipher = TokenCipher(app_secret)

    async def get_cached(self, key_id: str) -> CachedToken | None:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(Q["get_token"], {"key_id": key_id})).fetchone()
        if row is None or row["token_cipher"] is None:
            return None
        try:
            token = self._cipher.open(bytes(row["token_cipher"]), key_id)
        except Exception:  # sealed with another secret (the key was rotated): treat as absent
            return None
        return CachedToken(key_id, token, row["expires_ts"], row["issued_ts"])

    @asynccontextmanager
    async def _guard(self, key_id: str) -> AsyncIterator[IssueGuard]:
        # A dedicated connection: the advisory lock lives exactly as long as this session.
        async with await connect(self._conninfo, autocommit=True) as conn:
            await conn.execute(Q["lock_token_issue"], token_issue_params(key_id))
            try:
                row = await (await conn.execute(Q["get_token"], {"key_id": key_id})).fetchone()
                yield _PgGuard(key_id, row["last_attempt_ts"] if row else None, conn)
            finally:
                await conn.execute(Q["unlock_token_issue"], token_issue_params(key_id))

    def issue_guard(self, key_id: str) -> AbstractAsyncContextManager[IssueGuard]:
        return self._guard(key_id)

    async def save(self, token: CachedToken) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                Q["save_token"],
                {"key_id": token.key_id, "cipher": self._cipher.seal(token.token, token.key_id),
                 "expires_ts": token.expires_at, "issued_ts": token.issued_at},
            )
            await conn.commit()


class PgRateLimiter:
    """At most ``limit`` requests per second for one app key, across all processes.

    A GCRA schedule in one row: grants are spaced one emission interval apart
    (``window_s / limit``), a little longer than KIS's second divided by the limit, so that
    differences in delay between requests cannot push the broker's own count over the limit.  A
    grant that comes up to ``tolerance_s`` after its slot keeps the slot's place in the schedule,
    so the time a waiter takes to wake up and reach the database is not lost from the budget; any
    ``limit + 1`` consecutive grants still span at least ``window_s - tolerance_s`` (1.04 s by
    default), which leaves 40 ms for differences in delay between requests: httpx's standard
    transport under three processes on a loaded two-core machine showed more than 20 and, now and
    then, more than 30 (one EGW00201 in five seconds of the contract test).

    A lower priority is granted only when the schedule has been idle for part of an interval
    (``DEFAULT_RESERVE``), which caps its share of the budget and leaves orders room even while
    polling runs flat out.  In one process only one task per priority waits on the database at a
    time; the others queue behind it in order, instead of all waking for every slot.
    """

    def __init__(
        self,
        pool: Pool,
        key_id: str,
        limit: float,
        *,
        window_s: float = 1.05,
        tolerance_s: float = 0.010,
        reserve: dict[Priority, float] | None = None,
    ) -> None:
        if limit <= 0:
            raise ValueError("limit must be positive")
        if not 0 <= tolerance_s < window_s - 1.0:
            raise ValueError("tolerance_s must leave the schedule's window above one second")
        self._pool = pool
        self._key_id = key_id
        self._interval = window_s / limit
        self._tolerance = tolerance_s
        shares = reserve or DEFAULT_RESERVE
        # a share s of the budget: one grant per interval / (1 - s), i.e. a gap of interval * s / (1 - s)
        self._gap = {p: self._interval * shares.get(p, 0.0) / max(1e-9, 1 - shares.get(p, 0.0)) for p in Priority}
        self._turn = {p: asyncio.Lock() for p in Priority}
        self._ready = False
        self.grants = 0
        self.waits = 0
        # the last grant's slot in the schedule, on the database clock (epoch seconds); the grant
        # came at most ``tolerance_s`` after it
        self.last_slot = 0.0

    def _params(self, priority: Priority) -> dict[str, object]:
        return {"key_id": self._key_id, "interval_s": self._interval, "gap_s": self._gap[priority],
                "tolerance_s": self._tolerance}

    async def acquire(self, priority: Priority) -> None:
        params = self._params(priority)
        async with self._turn[priority]:
            while True:
                # the connection goes back to the pool while waiting; each try is one short transaction
                async with self._pool.connection() as conn:
                    if not self._ready:
                        await conn.execute(Q["ensure_rate_row"], {"key_id": self._key_id})
                        self._ready = True
                    row = await (await conn.execute(Q["take_rate_slot"], params)).fetchone()
                    wait_row = (None if row is not None
                                else await (await conn.execute(Q["rate_wait"], params)).fetchone())
                if row is not None:
                    self.grants += 1
                    self.last_slot = float(row["slot_epoch"])
                    return
                self.waits += 1
                wait = float(wait_row["wait_s"]) if wait_row is not None else self._interval
                await asyncio.sleep(min(max(wait, 0.0005), 1.0))


class UnlimitedRateLimiter:
    """For a simulator with its rate limit switched off (benchmarks): grants at once."""

    async def acquire(self, priority: Priority) -> None:
        return None
