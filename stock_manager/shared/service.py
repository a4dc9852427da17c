"""The frame every service process runs in.

It loads settings (one clear line and exit 2 when one is missing or malformed), configures
logging, opens the pool as the service's own role, heartbeats, records start and stop in
``ops.events``, and turns SIGTERM/SIGINT, or end-of-file on stdin when ``up`` started it (the stop
protocol of ``stock_manager.shared.platform``, the same on Windows and POSIX), into a clean stop.
The service itself is one coroutine ``body(ctx)`` that runs until it returns or the process is
told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from loguru import logger

from stock_manager.shared import calendar, events, platform
from stock_manager.shared.clock import Clock, SystemClock
from stock_manager.shared.clock_sync import SimClock
from stock_manager.shared.db.listen import Listener
from stock_manager.shared.db.pool import Pool, open_pool, wait_until_reachable
from stock_manager.shared.heartbeat import Heartbeat
from stock_manager.shared.logging import redact, setup_logging
from stock_manager.shared.runtime import install_uvloop, tune_gc
from stock_manager.shared.settings import Settings, SettingsError, load_settings


@dataclass
class ServiceContext:
    name: str
    settings: Settings
    pool: Pool
    clock: Clock
    instance_id: str
    heartbeat: Heartbeat
    listener: Listener
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    info: dict[str, Any] = field(default_factory=dict)

    async def emit(self, kind: str, message: str = "", **kw: Any) -> None:
        async with self.pool.connection() as conn:
            await events.emit(conn, self.name, kind, message, market_ts=self.clock.now(), **kw)


ServiceBody = Callable[[ServiceContext], Awaitable[None]]


def instance_id_for(name: str) -> str:
    return os.environ.get("SM_INSTANCE_ID") or f"{socket.gethostname()}-{os.getpid()}"


def run_service(name: str, body: ServiceBody, *, pool_size: int = 8) -> int:
    """Run a service to completion; returns the process exit code."""
    try:
        settings = load_settings()
        settings.require_database()
    except SettingsError as e:
        print(f"stock-manager {name}: {e}", file=sys.stderr)
        return 2
    instance = instance_id_for(name)
    setup_logging(name, instance, level=settings.sm_log_level, json=settings.sm_log_json,
                  secrets=settings.secret_values())
    install_uvloop()
    try:
        asyncio.run(_main(name, instance, settings, body, pool_size))
    except SettingsError as e:
        print(f"stock-manager {name}: {e}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as e:
        logger.error("database unavailable: {}", redact(str(e).splitlines()[0] if str(e) else type(e).__name__))
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


async def make_clock(settings: Settings) -> Clock:
    """The simulator's market clock in sim mode and in paper mode with SM_SIM_CLOCK, else the system's."""
    if settings.follows_sim_clock:
        clock = SimClock(settings.rest_url)
        await clock.start()
        return clock
    return SystemClock()


async def _main(name: str, instance: str, settings: Settings, body: ServiceBody, pool_size: int) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    platform.on_stop_signals(loop, stopping.set)
    if platform.stop_on_stdin_close_wanted():
        platform.watch_stdin_close(lambda: platform.call_soon_if_running(loop, stopping.set))

    url = settings.role_url(name)
    # before the simulator's clock, whose first sync may wait 10 s: a missing database is the first
    # thing an operator needs to hear about
    if not await wait_until_reachable(url, stopping, lambda line: logger.error("{}", line)):
        return
    clock = await make_clock(settings)
    pool = await open_pool(url, max_size=pool_size, name=name)
    listener = Listener(url)
    ctx_info: dict[str, Any] = {}
    hb = Heartbeat(pool, name, instance, clock, interval_s=settings.sm_heartbeat_s, info=lambda: ctx_info)
    ctx = ServiceContext(name, settings, pool, clock, instance, hb, listener, stopping, ctx_info)
    calendar_task: asyncio.Task[None] | None = None
    try:
        await hb.start()
        await ctx.emit("ServiceStarted", f"{name} started", pid=os.getpid(), mode=settings.sm_mode.value)
        logger.info("{} started (pid {}, mode {})", name, os.getpid(), settings.sm_mode.value)
        hb.status = "RUNNING"
        await listener.start()
        # every service asks phase_at: the trading calendar (holidays, shifted days) before any work
        calendar_task = asyncio.create_task(calendar.keep_installed(pool, clock, stopping))
        tune_gc()  # start-up is done: what exists now lives long
        work: asyncio.Task[None] = asyncio.ensure_future(body(ctx))
        stop_wait = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({work, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if work in done:
            stop_wait.cancel()
            work.result()  # a body that dies raises here and the supervisor restarts the process
        else:
            logger.info("{} stopping", name)
            hb.status = "STOPPING"
            work.cancel()
            await _await_stopped(name, work)
    finally:
        if calendar_task is not None:
            calendar_task.cancel()
        await listener.stop()
        with contextlib.suppress(Exception):
            await ctx.emit("ServiceStopped", f"{name} stopped", pid=os.getpid())
        await hb.stop()
        await pool.close()
        if isinstance(clock, SimClock):
            await clock.stop()
        logger.info("{} stopped", name)


# a body still busy this long after it was cancelled is named in the log, task by task, so a stop
# that the supervisor has to end by force says where it hung
STOP_REPORT_AFTER_S = 3.0


async def _await_stopped(name: str, work: asyncio.Task[None], report_after_s: float = STOP_REPORT_AFTER_S) -> None:
    done, _ = await asyncio.wait({work}, timeout=report_after_s)
    if not done:
        busy = [t for t in asyncio.all_tasks() if not t.done() and t is not asyncio.current_task()]
        where = "; ".join(f"{t.get_name()} at {_frame_of(t)}" for t in busy[:12])
        logger.warning("{} still stopping after {:.1f}s: {}", name, report_after_s, where or "no task left")
    with contextlib.suppress(asyncio.CancelledError):
        await work


def _frame_of(task: asyncio.Task[Any]) -> str:
    stack = task.get_stack(limit=1)
    if not stack:
        return "?"
    code = stack[-1].f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{stack[-1].f_lineno} {code.co_name}"


async def idle_until_stopped(ctx: ServiceContext) -> None:
    """A body that only heartbeats: what a service is before it has work of its own."""
    await ctx.stopping.wait()
