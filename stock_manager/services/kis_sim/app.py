"""The simulator as one ASGI app: KIS REST, KIS WebSocket and the ``/sim`` control API on one port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stock_manager.shared import calendar, platform
from stock_manager.shared.clock import Clock

from . import control, master_files, replay, rest
from .config import SimConfig
from .http_protocol import KisHttpProtocol
from .persist import Store
from .sim import Sim
from .ws_protocol import KisWebSocketProtocol


class JournalBeforeAnswer:
    """ASGI middleware: an HTTP answer starts only after the state it may show is in the journal.

    A client that was told an order number, a fill or a balance must find it again after a crash.
    """

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        store = self.store

        async def send_after_journal(message: Message) -> None:
            if message["type"] == "http.response.start":
                store.flush()
            await send(message)

        await self.app(scope, receive, send_after_journal)


def create_app(config: SimConfig, wall: Clock | None = None, data_dir: Path | None = None) -> Starlette:
    """The simulator; ``wall`` is the clock its tokens and approval keys run on (the system clock).

    With ``data_dir`` its state survives restarts (persist.py); without, it lives in memory.
    """
    sim = Sim(config, wall, data_dir)
    store = sim.store

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(sim.hub.run())]
        if store is not None:
            tasks.append(asyncio.create_task(store.run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if store is not None:
                store.close()

    ws_routes: list[BaseRoute] = [
        WebSocketRoute("/", sim.hub.endpoint),
        WebSocketRoute("/tryitout", sim.hub.endpoint),
        WebSocketRoute("/tryitout/{tr_id}", sim.hub.endpoint),
    ]
    middleware = [Middleware(JournalBeforeAnswer, store=store)] if store is not None else []
    app = Starlette(
        routes=[*rest.routes(sim), *control.routes(sim), *master_files.routes(sim), *ws_routes], middleware=middleware,
        lifespan=lifespan,
    )
    app.state.sim = sim
    return app


def uvicorn_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings the simulator relies on: its own HTTP and WS protocols, no server-side pings."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        http=KisHttpProtocol,  # KIS's header-name casing (http_protocol.py)
        ws=KisWebSocketProtocol,
        # KIS pings with PINGPONG text frames; protocol pings would mask unanswered PINGPONGs
        ws_ping_interval=None,
        ws_ping_timeout=None,
        lifespan="on",
        access_log=False,
        timeout_keep_alive=30,
    )


async def serve(
    host: str = "127.0.0.1",
    port: int = 8800,
    env: Literal["real", "paper"] = "real",
    config: SimConfig | None = None,
    data_dir: Path | None = None,
) -> None:
    """Run the simulator until cancelled; with ``data_dir``, resuming the state stored there.

    With ``config`` given, its ``env`` is kept unless ``env`` asks for paper explicitly.
    """
    if config is None:
        cfg = SimConfig(env=env)
    else:
        cfg = replace(config, env=env) if env != config.env and env != "real" else config
    # the simulator's market and its order checks follow KRX's calendar, as the product's do; it has
    # no database, so it reads the library itself, once, for last year to next year
    first, last = calendar.default_range(datetime.now(UTC).date())
    if cfg.replay is not None:  # an old recorded day must be in the calendar too
        traded = replay.trade_date_of(cfg.replay)
        first, last = min(first, date(traded.year, 1, 1)), max(last, traded)
    calendar.install(calendar.xkrx_calendar(first, last))
    server = uvicorn.Server(uvicorn_config(create_app(cfg, data_dir=data_dir), host, port))
    if platform.stop_on_stdin_close_wanted():  # started by `up`: its stop protocol
        platform.watch_stdin_close(lambda: setattr(server, "should_exit", True))
    await server.serve()
