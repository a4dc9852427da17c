"""What the adapter contract tests share: a recording transport, a per-test harness, WS event logs.

The adapter is always the real one (``KisRestClient``, ``KisWebSocketClient``, the PostgreSQL
ports) and the broker is always the simulator as a separate process on a loopback port, so
everything crosses real HTTP and WebSocket connections.  The only thing slipped in between is
``Wire``: an httpx transport that forwards every request unchanged and writes down what went
out and what came back, so a test can say "exactly one order was sent" or "the token endpoint
was called twice", which the adapter itself does not report.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from stock_manager.services.kis_sim.app import create_app, uvicorn_config
from stock_manager.services.kis_sim.config import SimConfig
from stock_manager.shared.clock import ScaledClock
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.kis.endpoints import KisEnv
from stock_manager.shared.kis.pg_ports import PgRateLimiter, PgTokenStore, UnlimitedRateLimiter
from stock_manager.shared.kis.ports import RateLimiter
from stock_manager.shared.kis.rest import KisCredentials, KisRestClient, KisRestSettings
from stock_manager.shared.kis.ws import KisWebSocketClient, ReconnectPolicy, WsEvent
from tests.support.pg import TestDb
from tests.support.sim import SimProcess

TOKEN = "/oauth2/tokenP"
APPROVAL = "/oauth2/Approval"
HASHKEY = "/uapi/hashkey"
ORDER_CASH = "order-cash"
RVSECNCL = "order-rvsecncl"
DAILY_CCLD = "inquire-daily-ccld"
BALANCE = "inquire-balance"
PRICE = "inquire-price"


@dataclass(frozen=True, slots=True)
class Sent:
    method: str
    path: str
    tr_id: str
    tr_cont: str
    hashkey: str
    status: int | None  # None: no HTTP answer (timeout, dropped connection)
    at: float


class Wire(httpx.AsyncBaseTransport):
    """A real HTTP transport that keeps a log of every exchange."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)
        )
        self.log: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        def note(status: int | None) -> None:
            self.log.append(
                Sent(
                    request.method,
                    request.url.path,
                    request.headers.get("tr_id", ""),
                    request.headers.get("tr_cont", ""),
                    request.headers.get("hashkey", ""),
                    status,
                    time.monotonic(),
                )
            )

        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            note(None)
            raise
        note(response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def to(self, path_part: str) -> list[Sent]:
        return [s for s in self.log if path_part in s.path]

    def count(self, path_part: str, status: int | str | None = "any") -> int:
        return sum(1 for s in self.to(path_part) if status == "any" or s.status == status)


class ThreadSim(SimProcess):
    """The simulator served from a thread of this process (uvicorn on a loopback port), for the
    settings its command line does not offer.  Still spoken to over real sockets only."""

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config.env)
        self._server = uvicorn.Server(uvicorn_config(create_app(config), "127.0.0.1", self.port))
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)

    def start(self) -> ThreadSim:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.http.close()


def new_credentials(hts_id: bool = True) -> KisCredentials:
    """A fresh app key and account: nothing (token, rate window, cash) is shared with other tests."""
    return KisCredentials.of(
        "PS" + uuid.uuid4().hex + uuid.uuid4().hex[:2],  # 36 characters, like a KIS app key
        (uuid.uuid4().hex * 6)[:180],
        f"{uuid.uuid4().int % 10**8:08d}-01",
        f"hts{uuid.uuid4().hex[:8]}" if hts_id else None,
    )


@dataclass
class Adapter:
    """One process's view of KIS: its REST client and the wire under it."""

    rest: KisRestClient
    wire: Wire
    creds: KisCredentials
    limiter: RateLimiter

    @property
    def account(self) -> str:
        return f"{self.creds.cano}-{self.creds.acnt_prdt_cd}"


@dataclass
class Harness:
    """One test's world: the simulator, its database, a market clock in step with the simulator."""

    sim: SimProcess
    db: TestDb
    pool: Pool
    env: KisEnv
    # requests/s the simulator enforces per app key (None: switched off for this test)
    rate_limit: int | None
    creds: KisCredentials = field(default_factory=new_credentials)
    clocks: list[ScaledClock] = field(default_factory=list)
    walls: list[ScaledClock] = field(default_factory=list)
    _closers: list[Any] = field(default_factory=list)

    def clock(self) -> ScaledClock:
        """A client clock following the simulator's (as services do in sim mode)."""
        now = self.sim.get("/sim/clock")
        clock = ScaledClock(datetime.fromisoformat(now["now"]), float(now["speed"]))
        self.clocks.append(clock)
        return clock

    def set_clock(self, at: str | None = None, speed: float | None = None) -> datetime:
        """Move the simulator's market clock and every client clock with it."""
        body: dict[str, Any] = {}
        if at is not None:
            body["at"] = at
        if speed is not None:
            body["speed"] = speed
        r = self.sim.http.post("/sim/clock", json=body)
        r.raise_for_status()
        now = datetime.fromisoformat(r.json()["now"])
        for clock in self.clocks:
            clock.set(now, speed)
        return now

    def wall(self) -> ScaledClock:
        """A client wall clock following the simulator's gateway clock (tokens run on it)."""
        now = self.sim.get("/sim/wall")
        clock = ScaledClock(datetime.fromisoformat(now["now"]), float(now["speed"]))
        self.walls.append(clock)
        return clock

    def set_wall(self, at: datetime | None = None, speed: float | None = None) -> datetime:
        """Move the simulator's wall clock (token rules) and every client wall clock with it."""
        body: dict[str, Any] = {}
        if at is not None:
            body["at"] = at.isoformat()
        if speed is not None:
            body["speed"] = speed
        r = self.sim.http.post("/sim/wall", json=body)
        r.raise_for_status()
        now = datetime.fromisoformat(r.json()["now"])
        for clock in self.walls:
            clock.set(now, speed)
        return now

    def faults(self, **faults: Any) -> None:
        self.sim.faults(**faults)

    def limiter(self, creds: KisCredentials) -> RateLimiter:
        """The production wiring (``stock_manager.shared.broker``): PgRateLimiter at the simulator's limit, or
        none when the test switched the simulator's limit off."""
        if self.rate_limit is None:
            return UnlimitedRateLimiter()
        return PgRateLimiter(self.pool, creds.key_id(self.env), self.rate_limit)

    def adapter(
        self,
        creds: KisCredentials | None = None,
        *,
        limiter: RateLimiter | None = None,
        store_db: TestDb | None = None,
        store_pool: Pool | None = None,
        **settings: Any,
    ) -> Adapter:
        creds = creds or self.creds
        wire = Wire()
        store = PgTokenStore(
            store_pool or self.pool, (store_db or self.db).url("execution"), creds.app_secret
        )
        lim = limiter if limiter is not None else self.limiter(creds)
        rest = KisRestClient(
            KisRestSettings(env=self.env, base_url=self.sim.url, **settings),
            creds,
            store,
            lim,
            clock=self.clock(),
            wall=self.wall(),
            transport=wire,
        )
        self._closers.append(rest.aclose)
        return Adapter(rest, wire, creds, lim)

    def websocket(
        self,
        adapter: Adapter,
        **options: Any,
    ) -> KisWebSocketClient:
        options.setdefault(
            "reconnect", ReconnectPolicy(initial=0.2, maximum=1.0, jitter=0.0, min_interval=0.5, stable_after=60.0)
        )
        ws = KisWebSocketClient(
            adapter.rest, env=self.env, url=self.sim.ws_url, hts_id=adapter.creds.hts_id, **options
        )
        self._closers.append(ws.aclose)
        return ws

    def events(self, ws: KisWebSocketClient) -> EventLog:
        log = EventLog(ws)
        self._closers.append(log.aclose)
        return log

    def broker_orders(self, account: str | None = None) -> list[dict[str, Any]]:
        """The simulator's ground truth for one account (``GET /sim/orders``)."""
        acct = account or f"{self.creds.cano}-{self.creds.acnt_prdt_cd}"
        return [o for o in self.sim.orders() if o["account"] == acct]

    def broker_fills(self, account: str | None = None) -> list[dict[str, Any]]:
        acct = account or f"{self.creds.cano}-{self.creds.acnt_prdt_cd}"
        return [f for f in self.sim.fills() if f["account"] == acct]

    async def aclose(self) -> None:
        for close in reversed(self._closers):
            await close()


class EventLog:
    """Drains a WebSocket client's event stream in the background so a test can wait on it."""

    def __init__(self, ws: KisWebSocketClient) -> None:
        self.events: list[WsEvent] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._drain(ws))

    async def _drain(self, ws: KisWebSocketClient) -> None:
        async for event in ws.events():
            self.events.append(event)
            self._changed.set()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, done: Callable[[list[WsEvent]], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [type(e).__name__ for e in self.events[-20:]]
                raise AssertionError(f"timed out waiting for {what}; last events: {kinds}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                continue

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def secret(value: SecretStr) -> str:
    return value.get_secret_value()

