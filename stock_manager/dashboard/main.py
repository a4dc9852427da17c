"""``stock-manager run dashboard``: the web dashboard at ``SM_DASHBOARD_ADDR`` plus the alert loop.

Two connections, two roles: the pages read as ``sm_readonly``; the heartbeat and the alert loop
write as ``sm_dashboard``.  Without ``SM_ALERT_WEBHOOK_URL`` there is no alert loop, and a
``sm_dashboard`` that cannot log in costs only the heartbeat; with it, that is a start failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path

import psycopg
import uvicorn
from loguru import logger
from psycopg_pool import PoolTimeout

from stock_manager.dashboard.alerts import AlertConfig, Alerter, Webhook
from stock_manager.dashboard.app import create_app
from stock_manager.dashboard.config import DashboardConfig, listen_addr, load_dashboard_config, writer_url
from stock_manager.dashboard.reports import Reports
from stock_manager.shared import events, platform
from stock_manager.shared.clock import Clock, SystemClock
from stock_manager.shared.clock_sync import SimClock
from stock_manager.shared.db.pool import Pool, connect, open_pool, wait_until_reachable
from stock_manager.shared.heartbeat import Heartbeat
from stock_manager.shared.logging import Redactor, redact, setup_logging
from stock_manager.shared.service import instance_id_for
from stock_manager.shared.settings import Settings, SettingsError, load_settings

NAME = "dashboard"


def main() -> int:
    try:
        settings = load_settings()
        settings.require_database()
        cfg = load_dashboard_config()
        host, port = listen_addr(settings)
    except SettingsError as e:
        print(f"stock-manager {NAME}: {e}", file=sys.stderr)
        return 2
    instance = instance_id_for(NAME)
    secrets = settings.secret_values()
    if cfg.sm_alert_webhook_url is not None:
        secrets.append(cfg.sm_alert_webhook_url.get_secret_value())
    setup_logging(NAME, instance, level=settings.sm_log_level, json=settings.sm_log_json, secrets=secrets)
    try:
        asyncio.run(serve(settings, cfg, host, port, instance, secrets))
    except (psycopg.OperationalError, PoolTimeout) as e:
        logger.error("database unavailable: {}", redact(str(e).splitlines()[0] if str(e) else type(e).__name__))
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


async def _open_writer(settings: Settings, required: bool) -> Pool | None:
    url = writer_url(settings)
    try:
        async with await connect(url):  # fails at once on a refused login; a pool would retry for 30 s
            pass
        return await open_pool(url, min_size=1, max_size=2, name=f"{NAME}-writer")
    except Exception as e:
        if required:
            raise
        logger.warning("no heartbeat: cannot connect as sm_dashboard ({}); pages still work", type(e).__name__)
        return None


async def _clock(settings: Settings) -> Clock:
    """The simulator's clock in sim mode and with SM_SIM_CLOCK (only the heartbeat's market time uses
    it): never wait long for it."""
    if settings.follows_sim_clock:
        clock = SimClock(settings.rest_url)
        await clock.start(wait_s=1.0)
        return clock
    return SystemClock()


async def serve(settings: Settings, cfg: DashboardConfig, host: str, port: int, instance: str,
                secrets: list[str]) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    server: uvicorn.Server | None = None

    def request_stop(*_: object) -> None:
        """Safe from a signal handler or the stdin thread, before and while uvicorn serves."""
        if server is not None:
            server.should_exit = True
        platform.call_soon_if_running(loop, stopping.set)

    # uvicorn handles SIGTERM/SIGINT while it serves and re-raises them afterwards; these handlers make
    # that (and a signal during start-up) a clean stop rather than death by the default action.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    if platform.stop_on_stdin_close_wanted():  # started by `up`: its stop protocol
        platform.watch_stdin_close(request_stop)
    # one line naming the server at once, then a quiet wait, rather than the pool's 30 s of errors
    if not await wait_until_reachable(settings.role_url("readonly"), stopping, lambda line: logger.error("{}", line)):
        return
    readonly = await open_pool(settings.role_url("readonly"), min_size=1, max_size=4, name=f"{NAME}-readonly")
    alerting = cfg.sm_alert_webhook_url is not None
    writer = await _open_writer(settings, required=alerting)
    clock = await _clock(settings)
    hb = Heartbeat(writer, NAME, instance, clock, interval_s=settings.sm_heartbeat_s) if writer else None
    alert_task: asyncio.Task[None] | None = None
    webhook: Webhook | None = None
    # rendered day reports live as long as this process: nothing to configure, nothing left behind
    report_dir = tempfile.TemporaryDirectory(prefix="sm-dashboard-reports-")
    reports = Reports(readonly, Path(report_dir.name), SystemClock())
    server = uvicorn.Server(uvicorn.Config(create_app(readonly, mode=settings.sm_mode.value, reports=reports),
                                           host=host, port=port, log_level="warning", access_log=False,
                                           lifespan="off"))
    if stopping.is_set():  # told to stop while the pools opened
        server.should_exit = True
    try:
        if hb is not None and writer is not None:
            await hb.start()
            hb.status = "RUNNING"
            async with writer.connection() as conn:
                await events.emit(conn, NAME, "ServiceStarted", f"{NAME} started at http://{host}:{port}/",
                                  pid=os.getpid(), alerts=alerting)
        if alerting and writer is not None and cfg.sm_alert_webhook_url is not None:
            scrub = Redactor()
            scrub.add(secrets)
            webhook = Webhook(cfg.sm_alert_webhook_url.get_secret_value())
            alerter = Alerter(writer, webhook, AlertConfig(
                label=settings.sm_mode.value, interval_s=cfg.sm_alert_interval_s,
                min_interval_s=cfg.sm_alert_min_interval_s, max_per_min=cfg.sm_alert_max_per_min,
                repeat_s=cfg.sm_alert_repeat_s, max_age_s=cfg.sm_alert_max_age_s,
                max_lines=cfg.sm_alert_max_lines), scrub)
            alert_task = asyncio.create_task(alerter.run(stopping), name="alerts")
        logger.info("dashboard at http://{}:{}/ (metrics at /metrics)", host, port)
        await server.serve()  # returns on SIGTERM / SIGINT (uvicorn's own handlers)
        if not server.started:
            raise SystemExit(f"stock-manager {NAME}: cannot listen on {host}:{port}")
    finally:
        stopping.set()
        if alert_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await alert_task
        if webhook is not None:
            await webhook.close()
        if hb is not None and writer is not None:
            with contextlib.suppress(Exception):
                async with writer.connection() as conn:
                    await events.emit(conn, NAME, "ServiceStopped", f"{NAME} stopped", pid=os.getpid())
            await hb.stop()
        if isinstance(clock, SimClock):
            await clock.stop()
        if writer is not None:
            await writer.close()
        await readonly.close()
        report_dir.cleanup()
