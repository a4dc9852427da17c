"""PriceSync against the real simulator and a real database, connected as sm_pricesync.

One PriceSync runs for the whole module (starting it is the slow part); the tests look at it
from the outside: the simulator's own view of the WebSocket registrations, and the tables.
The simulator's market clock runs at 10x so that minutes close within the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
import uvicorn
from psycopg.rows import dict_row

from stock_manager.services.kis_sim.app import create_app, uvicorn_config
from stock_manager.services.kis_sim.config import SimConfig
from stock_manager.services.kis_sim.sim import Sim
from stock_manager.services.pricesync.app import Deps, PriceSync
from stock_manager.services.pricesync.config import PriceSyncConfig
from stock_manager.shared import events
from stock_manager.shared.broker import Broker, open_broker, open_websocket
from stock_manager.shared.clock import KST
from stock_manager.shared.clock_sync import SimClock
from stock_manager.shared.db.pool import Pool, open_pool
from stock_manager.shared.heartbeat import Heartbeat
from stock_manager.shared.kis.models import Side
from stock_manager.shared.kis.ws import KisWebSocketClient
from stock_manager.shared.settings import SIM_ACCOUNT, SIM_HTS_ID, Mode, Settings
from tests.support.pg import PgServer, TestDb, new_name

from .test_ingest_db import CANDLES_VS_TICKS

pytestmark = pytest.mark.timeout(120)

START = datetime(2026, 11, 23, 10, 0, 0, tzinfo=KST)  # a Monday, continuous session
HELD = ("005930", "000660", "035420")  # liquid (tier 0) names: prints every few wall ms at 10x
N_WATCH = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class System:
    db: TestDb
    sim: Sim
    base_url: str
    app: PriceSync
    broker: Broker
    pool: Pool
    watch: list[str]
    max_registrations: int = 0
    sessions_seen: int = 0
    samples: list[int] = field(default_factory=list)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with psycopg.connect(self.db.admin_url, row_factory=dict_row) as conn:
            return conn.execute(sql, params).fetchall()

    def registrations(self) -> set[tuple[str, str]]:
        subs: set[tuple[str, str]] = set()
        for s in self.sim.hub.sessions:
            if not s.closed:
                subs |= set(s.subs)
        return subs


async def wait_for(what: str, cond: Callable[[], Any], within: float = 20.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        await asyncio.sleep(every)
    pytest.fail(f"timed out after {within:.0f}s waiting for {what}")


async def _sample(system: System) -> None:
    """The simulator's own count of registrations per session, every 20 ms."""
    while True:
        for s in list(system.sim.hub.sessions):
            n = len(s.subs)
            system.max_registrations = max(system.max_registrations, n)
            system.samples.append(n)
        await asyncio.sleep(0.02)


@pytest_asyncio.fixture(scope="module")
async def system(pg_server: PgServer, template_db: str) -> AsyncIterator[System]:
    name = new_name("sm_t")
    janitor = pg_server.janitor(name, template=template_db)
    janitor.init()
    db = TestDb(pg_server, name)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    config = SimConfig(universe_size=400, clock_start=START, clock_speed=10.0)
    asgi = create_app(config)
    sim: Sim = asgi.state.sim
    server = uvicorn.Server(uvicorn_config(asgi, "127.0.0.1", port))
    server_task = asyncio.create_task(server.serve())
    tasks: list[asyncio.Task[Any]] = []
    heartbeat: Heartbeat | None = None
    pool: Pool | None = None
    broker: Broker | None = None
    ws: KisWebSocketClient | None = None
    clock = SimClock(base_url)
    try:
        await wait_for("the simulator", lambda: server.started, 15.0)
        universe = [s.code for s in sim.broker.universe.values() if not s.halted]
        watch = [c for c in universe if c not in HELD][:N_WATCH]
        with psycopg.connect(db.admin_url) as conn:
            for i, sym in enumerate(HELD):
                conn.execute(
                    "INSERT INTO trade.position_state (symbol, qty, avg_price, status) VALUES (%s, %s, 1000, 'OPEN')",
                    (sym, 10 + i),
                )
            for i, sym in enumerate(watch):
                conn.execute("INSERT INTO trade.watchlist (symbol, priority) VALUES (%s, %s)", (sym, N_WATCH - i))
        settings = Settings(
            database_url=db.admin_url, sm_mode=Mode.SIM, kis_rest_url=base_url, kis_ws_url=f"ws://127.0.0.1:{port}",
            _env_file=None,
        )
        await clock.start()
        url = db.url("pricesync")
        pool = await open_pool(url, max_size=6, name="pricesync")
        broker = open_broker(settings, pool, url, clock)
        ws = open_websocket(settings, broker)
        pool_ = pool

        async def emit(kind: str, message: str = "", **kw: Any) -> None:
            async with pool_.connection() as conn:
                await events.emit(conn, "pricesync", kind, message, market_ts=clock.now(), **kw)

        info: dict[str, Any] = {}
        heartbeat = Heartbeat(pool, "pricesync", "test-instance", clock, interval_s=1.0, info=lambda: info)
        await heartbeat.start()
        heartbeat.status = "RUNNING"
        deps = Deps(pool=pool, clock=clock, conninfo=url, rest=broker.rest, ws=ws, env=broker.env, mode=Mode.SIM,
                    rest_url=base_url, rate_limit=settings.rate_limit, emit=emit, info=info)
        cfg = PriceSyncConfig(
            _env_file=None,
            plan_interval_s=0.5, min_hold_s=5.0, sweep_per_s=1.0, status_interval_s=0.5,
        )
        app = PriceSync(deps, cfg)
        system = System(db, sim, base_url, app, broker, pool, watch)
        tasks.append(asyncio.create_task(_sample(system)))
        tasks.append(asyncio.create_task(app.run()))
        yield system
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if heartbeat is not None:
            await heartbeat.stop()
        if ws is not None:
            await ws.aclose()
        if broker is not None:
            await broker.aclose()
        if pool is not None:
            await pool.close()
        await clock.stop()
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(server_task, 10)
        janitor.drop()


async def test_subscriptions_fill_the_41_registrations_and_never_more(system: System) -> None:
    status = await wait_for(
        "41 registrations incl. notices",
        lambda: [r for r in system.rows("SELECT * FROM market.feed_status WHERE feed = 'ws'")
                 if r["connected"] and r["notices_subscribed"] and r["subscriptions"] == 41],
    )
    assert status[0]["last_connect_ts"] is not None
    regs = system.registrations()
    assert len(regs) == 41
    assert ("H0STCNI0", SIM_HTS_ID) in regs  # the account notices, keyed by the HTS ID
    trades = {k for t, k in regs if t == "H0STCNT0"}
    assert set(HELD) <= trades  # positions first
    assert trades <= set(HELD) | set(system.watch)
    await asyncio.sleep(2.0)  # a few more planning rounds: nothing moves, nothing exceeds
    assert system.max_registrations <= 41
    assert system.registrations() == regs
    changes = system.rows("SELECT data FROM ops.events WHERE kind = 'SubscriptionsChanged'")
    assert len(changes) == 1  # one fill, no churn


async def test_streamed_and_polled_prices_are_fresh(system: System) -> None:
    def ready() -> list[dict[str, Any]]:
        rows = system.rows(
            "SELECT symbol, source, fresh FROM market.prices_live WHERE fresh"
        )
        ws = {r["symbol"] for r in rows if r["source"] == "WS"}
        rest = {r["symbol"] for r in rows if r["source"] == "REST"}
        return rows if set(HELD) <= ws and rest & set(system.watch) else []

    rows = await wait_for("fresh WS prices for positions and fresh REST prices beyond the 40 streams", ready)
    assert rows
    # every symbol Strategy watches has a row (streamed, polled, or at least swept)
    known = {r["symbol"] for r in system.rows("SELECT symbol FROM market.prices_best")}
    assert set(HELD) <= known
    symbols = system.rows("SELECT count(*) AS n, count(*) FILTER (WHERE halted) AS halted, "
                          "bool_and(upper_limit > base_price AND lower_limit < base_price) AS limits "
                          "FROM market.symbols")[0]
    assert symbols["n"] == 400
    assert symbols["halted"] >= 1
    assert symbols["limits"]
    assert system.app.deps.info["ticks_written"] > 0


async def test_notices_are_relayed_without_secrets(system: System) -> None:
    ack = await system.broker.rest.order_cash(Side.BUY, HELD[0], 1, "01")
    odno = ack.odno.zfill(10)
    notices = await wait_for(
        "the order's notices",
        lambda: [r for r in system.rows("SELECT * FROM market.broker_notices WHERE odno = %(o)s", {"o": odno})
                 if r["kind"] == "FILL"],
    )
    fill = notices[0]
    assert (fill["symbol"], fill["side"], fill["qty"], fill["tr_id"]) == (HELD[0], "BUY", 1, "H0STCNI0")
    assert fill["trade_date"] == START.date()
    everything = json.dumps(system.rows("SELECT * FROM market.broker_notices"), default=str, ensure_ascii=False)
    account = SIM_ACCOUNT.replace("-", "")
    for secret in (SIM_HTS_ID, SIM_ACCOUNT, account, account[:8], system.sim.config.account_name):
        assert secret not in everything
    kinds = {r["kind"] for r in system.rows("SELECT kind FROM market.broker_notices WHERE odno = %(o)s",
                                            {"o": odno})}
    assert kinds <= {"ACCEPTED", "FILL"}


async def test_a_dropped_websocket_falls_back_to_polling_and_recovers(system: System) -> None:
    held = {"h": list(HELD)}
    stale_seen: set[str] = set()
    rest_seen: set[str] = set()

    def observe() -> bool:
        stale_seen.update(r["symbol"] for r in system.rows(
            "SELECT symbol FROM market.freshness WHERE source = 'WS' AND status = 'STALE' "
            "AND reason = 'ws disconnected' AND symbol = ANY(%(h)s)", held))
        rest_seen.update(r["symbol"] for r in system.rows(
            "SELECT symbol FROM market.prices_live WHERE source = 'REST' AND fresh AND symbol = ANY(%(h)s)", held))
        return stale_seen == rest_seen == set(HELD)

    async with httpx.AsyncClient(base_url=system.base_url) as client:
        # the simulator cuts every session each second: the adapter's reconnects (at least 5 s
        # apart) keep failing, so the outage lasts as long as the fault
        (await client.post("/sim/faults", json={"ws_drop_every_s": 1})).raise_for_status()
        try:
            await wait_for("the disconnect", lambda: system.rows(
                "SELECT 1 FROM market.feed_status WHERE feed = 'ws' AND NOT connected"), 10.0, 0.05)
            # the streamed prices stop vouching at once, and REST polling takes the positions over
            await wait_for("WS rows stale and positions polled over REST", observe, 20.0, 0.05)
        finally:
            (await client.post("/sim/faults", json={"ws_drop_every_s": 0})).raise_for_status()
    # the adapter reconnects (its back-off) and the stream takes over again
    await wait_for("reconnected with 41 registrations", lambda: system.rows(
        "SELECT 1 FROM market.feed_status WHERE feed = 'ws' AND connected AND notices_subscribed "
        "AND subscriptions = 41"), 30.0)
    await wait_for("positions fresh from the stream again", lambda: len(system.rows(
        "SELECT 1 FROM market.prices_live WHERE source = 'WS' AND fresh AND symbol = ANY(%(h)s)",
        held)) == len(HELD), 15.0)
    kinds = [r["kind"] for r in system.rows("SELECT kind FROM ops.events WHERE kind LIKE 'Ws%%' ORDER BY event_id")]
    assert kinds[:1] == ["WsConnected"]
    assert "WsDisconnected" in kinds
    assert kinds[-1] == "WsConnected"
    assert system.max_registrations <= 41


async def test_candles_match_the_ticks_they_came_from(system: System) -> None:
    closed = await wait_for("closed one-minute bars", lambda: system.rows(
        "SELECT count(*) AS n FROM market.candles WHERE closed AND symbol = ANY(%(h)s)",
        {"h": list(HELD)})[0]["n"] >= len(HELD), 30.0, 0.5)
    assert closed
    checks = system.rows(f"SELECT * FROM ({CANDLES_VS_TICKS}) x WHERE bucket_ts IN "
                         "(SELECT bucket_ts FROM market.candles WHERE closed)")
    assert checks
    bad = [c for c in checks if not c["ok"]]
    assert not bad, bad
    m = system.app.metrics
    assert (m.failed_batches, m.dropped) == (0, 0)
    assert system.rows("SELECT count(*) AS n FROM market.ticks")[0]["n"] >= m.ticks_written > 0
