"""The simulator as one ASGI app: KIS REST, KIS WebSocket and the ``/sim`` control API on one port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Literal

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute, WebSocketRoute

from shared.clock import Clock

from . import control, rest
from .config import SimConfig
from .sim import Sim
from .ws_protocol import KisWebSocketProtocol


def create_app(config: SimConfig, wall: Clock | None = None) -> Starlette:
    """The simulator; ``wall`` is the clock its tokens and approval keys run on (the system clock)."""
    sim = Sim(config, wall)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(sim.hub.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    ws_routes: list[BaseRoute] = [
        WebSocketRoute("/", sim.hub.endpoint),
        WebSocketRoute("/tryitout", sim.hub.endpoint),
        WebSocketRoute("/tryitout/{tr_id}", sim.hub.endpoint),
    ]
    app = Starlette(routes=[*rest.routes(sim), *control.routes(sim), *ws_routes], lifespan=lifespan)
    app.state.sim = sim
    return app


def uvicorn_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings the simulator relies on: its own WS protocol, no server-side pings."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
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
) -> None:
    """Run the simulator until cancelled.

    With ``config`` given, its ``env`` is kept unless ``env`` asks for paper explicitly.
    """
    if config is None:
        cfg = SimConfig(env=env)
    else:
        cfg = replace(config, env=env) if env != config.env and env != "real" else config
    server = uvicorn.Server(uvicorn_config(create_app(cfg), host, port))
    await server.serve()
