"""The dashboard's ASGI app: one HTML page that polls ``/api/snapshot`` every 2 s, and ``/metrics``.

Read-only by construction: every route only SELECTs (the ``monitor.*`` views; the day report's
tables, ``/report``, in ``reports.py``), through a pool that connects as ``sm_readonly`` (which the
database refuses any write).  No settings or credentials are
ever part of a response; the snapshot holds table data and the mode name only.
"""

from __future__ import annotations

import time
from typing import Any

from loguru import logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stock_manager import monitor
from stock_manager.dashboard import metrics
from stock_manager.dashboard.reports import Reports
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.resources import package_path

STATIC = package_path(__package__, "static")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(pool: Pool, *, mode: str, reports: Reports | None = None) -> Starlette:
    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    async def snapshot(_: Request) -> Response:
        started = time.perf_counter()
        try:
            async with pool.connection() as conn:
                snap = await monitor.snapshot(conn)
        except Exception as e:  # the page shows "database unavailable" and keeps polling
            logger.warning("snapshot failed: {}", type(e).__name__)
            return JSONResponse({"error": "database unavailable"}, status_code=503, headers=SECURITY_HEADERS)
        snap["mode"] = mode
        snap["query_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return JSONResponse(snap, headers=SECURITY_HEADERS)

    async def prometheus(_: Request) -> Response:
        try:
            async with pool.connection() as conn:
                snap = await monitor.snapshot(conn)
                data = await monitor.metrics_data(conn)
        except Exception as e:
            logger.warning("metrics failed: {}", type(e).__name__)
            return PlainTextResponse("# database unavailable\n", status_code=503)
        return Response(metrics.render(snap, data), media_type=metrics.CONTENT_TYPE)

    async def healthz(_: Request) -> Response:
        try:
            async with pool.connection() as conn:
                await conn.execute("SELECT 1 FROM monitor.trading_state")
        except Exception as e:
            return PlainTextResponse(f"database unavailable: {type(e).__name__}\n", status_code=503)
        return PlainTextResponse("ok\n")

    routes: list[Any] = [
        Route("/", index),
        Route("/api/snapshot", snapshot),
        Route("/metrics", prometheus),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *(reports.routes() if reports is not None else []),
    ]
    return Starlette(routes=routes)
