"""The day report on the dashboard: ``/report?date=D`` renders it (as ``stock-manager report`` would)
into a cache folder and redirects to ``/report/D/<key>/``, which serves its index.html and PNGs.

``key`` is a hash of what the report draws (the day's fills, round trips, summary and candles), so a
finished day renders once and today's renders again only after something changed; the page and its
PNGs always come from the same render.  Renders run one at a time, each into a fresh folder renamed
into place, so a reader never sees half a report.  Read-only like the rest of the dashboard: the
pool is sm_readonly's, and only the cache folder (the dashboard's own temporary one) is written.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from stock_manager.shared.clock import Clock
from stock_manager.shared.db.pool import Pool

if TYPE_CHECKING:
    from stock_manager.report.model import Day

# No script on the report page; its styles are inline (it is one self-contained file on disk)
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# a render is immutable under its key
FILE_HEADERS = {**REPORT_HEADERS, "Cache-Control": "private, max-age=86400, immutable"}
KEEP = 3  # renders kept per day (older keys 404 once pruned)
_FILE = re.compile(r"^(?:equity|trip-\d{2})\.png$")
_KEY = re.compile(r"^[0-9a-f]{16}$")


class Reports:
    def __init__(self, pool: Pool, root: Path, clock: Clock) -> None:
        self.pool = pool
        self.root = root
        self.clock = clock
        self._lock = asyncio.Lock()

    async def render(self, d: date | None) -> tuple[date, str] | None:
        """Render ``d`` (default: the latest day with fills) unless its current render exists."""
        from stock_manager.report import build  # matplotlib, only once a report is asked for

        async with self.pool.connection() as conn:
            d = d or await build.latest_day(conn)
            if d is None:
                return None
            key = hashlib.sha256((await build.fingerprint(conn, d)).encode()).hexdigest()[:16]
        day_dir = self.root / d.isoformat()
        async with self._lock:
            if not await asyncio.to_thread((day_dir / key / "index.html").exists):
                async with self.pool.connection() as conn:  # a checkout of its own: the read is one snapshot
                    day = await build.read(conn, d, self.clock)
                await asyncio.to_thread(self._publish, day, day_dir, key)
        return d, key

    def _publish(self, day: Day, day_dir: Path, key: str) -> None:
        """Draw into a fresh folder and rename it into place (in a thread: a second or two of CPU)."""
        from stock_manager.report import build

        day_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".render-", dir=day_dir))
        try:
            build.write_report(day, tmp)
            tmp.rename(day_dir / key)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._prune(day_dir, key)

    def _prune(self, day_dir: Path, keep: str) -> None:
        renders = sorted((p for p in day_dir.iterdir() if _KEY.match(p.name) and p.name != keep),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        for old in renders[KEEP - 1:]:
            shutil.rmtree(old, ignore_errors=True)

    async def start(self, request: Request) -> Response:
        raw = request.query_params.get("date")
        try:
            d = date.fromisoformat(raw) if raw else None
        except ValueError:
            return PlainTextResponse("date must be YYYY-MM-DD\n", status_code=400, headers=REPORT_HEADERS)
        try:
            done = await self.render(d)
        except Exception as e:  # the dashboard stays up; the operator can run `stock-manager report`
            logger.warning("report for {} failed: {}: {}", d or "the latest day", type(e).__name__, e)
            return PlainTextResponse("the report could not be rendered: see the dashboard's log\n", status_code=503,
                                     headers=REPORT_HEADERS)
        if done is None:
            return PlainTextResponse("no fills in the database yet: no day to report\n", status_code=404,
                                     headers=REPORT_HEADERS)
        day, key = done
        return RedirectResponse(f"/report/{day.isoformat()}/{key}/", status_code=303, headers=REPORT_HEADERS)

    def _path(self, params: dict[str, Any], name: str) -> Path | None:
        try:
            day = date.fromisoformat(str(params["day"])).isoformat()
        except ValueError:
            return None
        key = str(params["key"])
        if not _KEY.match(key):
            return None
        path = self.root / day / key / name
        return path if path.is_file() else None

    async def page(self, request: Request) -> Response:
        path = self._path(request.path_params, "index.html")
        if path is None:
            return PlainTextResponse("no such report (it may have been re-rendered: open /report again)\n",
                                     status_code=404, headers=REPORT_HEADERS)
        return FileResponse(path, media_type="text/html; charset=utf-8", headers=FILE_HEADERS)

    async def image(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        path = self._path(request.path_params, name) if _FILE.match(name) else None
        if path is None:
            return PlainTextResponse("not found\n", status_code=404, headers=REPORT_HEADERS)
        return FileResponse(path, media_type="image/png", headers=FILE_HEADERS)

    def routes(self) -> list[Route]:
        return [
            Route("/report", self.start),
            Route("/report/{day}/{key}/", self.page),
            Route("/report/{day}/{key}/{name}", self.image),
        ]
