"""PriceSync's wiring on a real database with stand-ins for KIS: the symbol-master fallback, the
master's most traded names where there is no volume ranking (paper), the plan handed to the
WebSocket client, order books."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import socket
import threading
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import psycopg
from psycopg.rows import dict_row

from stock_manager.services.pricesync.app import Deps, PriceSync
from stock_manager.services.pricesync.config import PriceSyncConfig
from stock_manager.services.pricesync.ingest import Ingest, IngestConfig
from stock_manager.shared.clock import KST, ManualClock, ScaledClock
from stock_manager.shared.db.pool import open_pool
from stock_manager.shared.kis.endpoints import KisEnv
from stock_manager.shared.kis.errors import ServiceNotFound
from stock_manager.shared.kis.master import KOSDAQ_MST, KOSPI_MST, MstLayout, format_line, master_zip
from stock_manager.shared.kis.models import Level, Quote
from stock_manager.shared.kis.ports import Priority
from stock_manager.shared.kis.ws import Subscription, WsEvent
from stock_manager.shared.kis.ws_frames import OrderBook
from stock_manager.shared.settings import Mode
from tests.support.pg import TestDb

from .helpers import quote, trade

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=KST)


class FakeWs:
    """A WebSocket client that never connects: PriceSync must manage on REST alone."""

    last_message_at: float | None = None

    def __init__(self) -> None:
        self.plans: list[frozenset[Subscription]] = []
        self.started = False

    @property
    def connected(self) -> bool:
        return False

    @property
    def active(self) -> frozenset[Subscription]:
        return frozenset()

    def replace(self, subs: Iterable[Subscription]) -> None:
        self.plans.append(frozenset(subs))

    def start(self) -> None:
        self.started = True

    async def aclose(self) -> None:
        return None

    async def events(self) -> AsyncIterator[WsEvent]:
        await asyncio.Event().wait()
        return
        yield  # unreachable: it makes this an async generator


class FakeRest:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def inquire_price(self, symbol: str, *, market: str = "J", priority: Priority = Priority.POLL) -> Quote:
        self.asked.append(symbol)
        return quote(symbol, 10_100, 500 + len(self.asked))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rows(db: TestDb, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(db.admin_url, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


async def test_without_a_master_watched_symbols_are_learnt_from_quotes(db: TestDb) -> None:
    watch = [f"{100 + i:06d}" for i in range(45)]
    with psycopg.connect(db.admin_url) as conn:
        conn.execute(
            "INSERT INTO trade.position_state (symbol, qty, avg_price, status) VALUES ('000050', 5, 1, 'OPEN')"
        )
        for i, sym in enumerate(watch):
            conn.execute("INSERT INTO trade.watchlist (symbol, priority) VALUES (%s, %s)", (sym, -i))
    pool = await open_pool(db.url("pricesync"), max_size=4)
    ws, rest = FakeWs(), FakeRest()
    events: list[str] = []

    async def emit(kind: str, message: str = "", **kw: Any) -> None:
        events.append(kind)

    deps = Deps(pool=pool, clock=ScaledClock(T0), conninfo=db.url("pricesync"), rest=rest, ws=ws, env=KisEnv.PAPER,
                mode=Mode.SIM, rest_url=f"http://127.0.0.1:{closed_port()}", rate_limit=20, emit=emit, info={})
    cfg = PriceSyncConfig(_env_file=None, sweep_per_s=0)
    app = PriceSync(deps, cfg)
    tasks: list[asyncio.Task[Any]] = []
    try:
        await app.start()
        assert not app.master.complete
        assert ws.started
        assert ws.plans[-1] == {Subscription.notices(KisEnv.PAPER)}  # the notice feed comes first
        await app.plan_once()
        plan = ws.plans[-1]
        assert Subscription.notices(KisEnv.PAPER) in plan
        assert len(plan) == 41
        assert Subscription.trades("000050") in plan
        tasks = [asyncio.create_task(app.ingest.run()), asyncio.create_task(app.poller.run()),
                 asyncio.create_task(app.report.run())]
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            known = {r["symbol"] for r in rows(db, "SELECT symbol FROM market.symbols")}
            if {"000050", *watch} <= known:
                break
            await asyncio.sleep(0.2)
        known_rows = {r["symbol"]: r for r in rows(db, "SELECT * FROM market.symbols")}
        assert {"000050", *watch} <= set(known_rows)
        assert known_rows["000050"]["base_price"] == 10_000
        assert known_rows["000050"]["upper_limit"] == 13_000
        # with no stream at all, the position is polled first and kept polled
        assert rest.asked[0] == "000050"
        assert "SymbolMasterUnavailable" in events
        prices = rows(db, "SELECT symbol, source FROM market.prices_best")
        assert {p["source"] for p in prices} == {"REST"}
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await app.ingest._drop_connection()
        await pool.close()


def _master(layout: MstLayout, codes: range, halted: str) -> bytes:
    """A master file whose symbol ``n`` traded ``n`` thousand shares at 10,000 won the day before."""
    return master_zip(layout, [format_line(layout, f"{n:06d}", "", f"종목{n}", {
        "group": "ST", "base_price": 10_000, "prior_volume": n * 1000, "halted": f"{n:06d}" == halted})
        for n in codes])


class _Files(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.files.get(self.path.rsplit("/", 1)[-1])
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: Any) -> None:
        return None


async def test_without_a_volume_ranking_the_master_s_most_traded_names_are_streamed(db: TestDb) -> None:
    """Paper KIS answers the volume ranking with MCA00124; the master's prior volumes stand in."""
    _Files.files = {KOSPI_MST.zip_name: _master(KOSPI_MST, range(100, 140), halted="000139"),
                    KOSDAQ_MST.zip_name: _master(KOSDAQ_MST, range(200, 220), halted="")}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/common/master"
    asked: list[str] = []

    async def ranking() -> list[str]:
        asked.append("volume-rank")
        raise ServiceNotFound("해당 서비스를 찾을수 없습니다.", msg_cd="MCA00124")

    async def emit(kind: str, message: str = "", **kw: Any) -> None:
        return None

    pool = await open_pool(db.url("pricesync"), max_size=4)
    ws = FakeWs()
    deps = Deps(pool=pool, clock=ScaledClock(T0), conninfo=db.url("pricesync"), rest=FakeRest(), ws=ws,
                env=KisEnv.PAPER, mode=Mode.PAPER, rest_url="http://127.0.0.1:1", rate_limit=2, emit=emit, info={},
                most_active=ranking)
    cfg = PriceSyncConfig(_env_file=None, sweep_per_s=0, master_urls=f"{base}/kospi_code.mst.zip,"
                                                                     f"{base}/kosdaq_code.mst.zip")
    app = PriceSync(deps, cfg)
    try:
        await app.start()
        assert app.master.complete and len(app.master.known) == 60
        await app._active_loop()  # returns: the ranking is not offered here
        # the 30 largest prior volumes: 219..200 from KOSDAQ, then 138..129 (139 is halted)
        expected = [f"{n:06d}" for n in [*range(219, 199, -1), *range(138, 128, -1)]]
        assert asked == ["volume-rank"] and app.active == expected
        await app.plan_once()
        assert {Subscription.trades(s) for s in expected} <= ws.plans[-1]
        await app._load_master()  # a new day's master keeps them
        assert app.active == expected
    finally:
        server.shutdown()
        await app.ingest._drop_connection()
        await pool.close()


async def test_order_books_update_bid_and_ask_only(db: TestDb) -> None:
    clock = ManualClock(T0)
    ing = Ingest(db.url("pricesync"), clock, config=IngestConfig(batch_window_s=0.01))
    try:
        ing.add_trade(trade("005930", T0, 71_000))
        await ing.flush()
        levels = tuple(Level(71_100 + 100 * i, 10 + i) for i in range(10))
        bids = tuple(Level(70_900 - 100 * i, 20 + i) for i in range(10))
        book = OrderBook("005930", T0.time(), "0", levels, bids, 1, 1, 0, 0, 0, 0, 0, 0, "3", Decimal(0), 0, 0, 0)
        ing.add_book(book)
        await ing.flush()
        [p] = rows(db, "SELECT price, bid, ask, bid_qty, ask_qty FROM market.prices_best")
        assert (p["price"], p["bid"], p["ask"], p["bid_qty"], p["ask_qty"]) == (71_000, 70_900, 71_100, 20, 10)
    finally:
        await ing._drop_connection()

