"""The ``stock-manager`` command (CONTRACT.md section 1)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg.types.json import Jsonb

from stock_manager import calendar_cmd, dayfile_cmd, secrets_cmd
from stock_manager import status as status_mod
from stock_manager.report import command as report_cmd
from stock_manager.shared import platform
from stock_manager.shared.db.migrate import MigrationError, migrate, set_role_passwords
from stock_manager.shared.db.pool import connect, describe
from stock_manager.shared.logging import redact
from stock_manager.shared.settings import Mode, Settings, SettingsError, load_settings
from stock_manager.supervisor import ChildSpec, Supervisor

SERVICES = ("pricesync", "strategy", "execution")
RUNNABLE = (*SERVICES, "kis-sim", "dashboard")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stock-manager", description="Automated trading on the KIS Open API.")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole system on this machine")
    up.add_argument("--mode", choices=[m.value for m in Mode], default=None)
    up.add_argument("--i-understand-live-trading", action="store_true", dest="live_ok")
    up.add_argument("--no-status", action="store_true", help="do not draw the live status screen")

    sub.add_parser("migrate", help="apply db/ migrations and create the service roles")

    run = sub.add_parser("run", help="run one service in the foreground")
    run.add_argument("service", choices=RUNNABLE)
    run.add_argument("--host", default="127.0.0.1", help="kis-sim only")
    run.add_argument("--port", type=int, default=8800, help="kis-sim only")
    run.add_argument("--env", choices=["real", "paper"], default="real", help="kis-sim only")
    run.add_argument("--seed", type=int, default=None,
                     help="kis-sim only: the market's seed (the same seed gives the same day)")
    run.add_argument("--data-dir", type=Path, default=None,
                     help="kis-sim only: keep its accounts, orders, fills and clock there across restarts")
    run.add_argument("--master", type=Path, default=None, metavar="DIR",
                     help="kis-sim only: list the shares of the KIS master files in DIR (kospi_code.mst.zip, "
                          "kosdaq_code.mst.zip) instead of a seeded universe")
    run.add_argument("--replay", type=Path, default=None, metavar="FILE",
                     help="kis-sim only: play the recorded day in FILE (a day file) as the market")
    run.add_argument("--speed", type=float, default=None, help="kis-sim only: market clock speed (clock s per wall s)")
    run.add_argument("--start", default=None,
                     help="kis-sim only: market clock start, ISO 8601 with offset (a replay: 08:00 of its day)")

    st = sub.add_parser("status", help="one screen of health from the monitor views (as sm_readonly)")
    st.add_argument("--watch", action="store_true", help="redraw every 2 s")
    st.add_argument("--json", action="store_true", help="the snapshot the dashboard shows, as JSON")

    report_cmd.add_arguments(sub.add_parser(
        "report", help="one trading day as an HTML page with PNG charts: equity, each round trip, reasons, "
                       "fees and tax, the summary's notes (as sm_readonly)"))

    for name, text in (("halt", "stop new entries everywhere at once"), ("resume", "allow entries again"),
                       ("flatten", "sell every position now (trading state REDUCING until resumed)")):
        c = sub.add_parser(name, help=text)
        c.add_argument("--reason", default=f"operator {name}")

    # its options are its own (python -m stock_manager.soak --help); main() hands them over whole
    sub.add_parser("soak", help="the whole stack under faults and SIGKILLs, then every invariant checked")
    sub.add_parser("replay", help="a recorded day file through the whole stack on a fresh database, "
                                  "ending with the day report (stock-manager replay --help)")

    calendar_cmd.add_arguments(sub.add_parser(
        "calendar", help="the trading calendar: refresh it from exchange-calendars, override a day, show it"))

    dayfile_cmd.add_arguments(
        sub.add_parser("export-day", help="a recorded KST trade date as a day file (Parquet in a zip)"),
        sub.add_parser("import-day", help="load a day file into market.* (refused if the day has rows)"))

    secrets_cmd.add_arguments(sub.add_parser(
        "secrets", help="store or delete a credential in the OS keyring (the value read from stdin)"))

    hc = sub.add_parser("healthcheck", help="exit 0 if SERVICE has a fresh heartbeat (docker healthcheck)")
    hc.add_argument("service", choices=SERVICES)
    hc.add_argument("--max-age", type=float, default=30.0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The command, made safe for pipes: ``stock-manager status | head -3`` ends quietly.

    A reader that goes away raises BrokenPipeError on our next write (Python ignores SIGPIPE, and
    restoring its default would also kill the services on a dropped socket).  The output is flushed
    here so the error surfaces inside the handler rather than at interpreter exit, and stdout is
    pointed at /dev/null so the final flush cannot raise again.  141 is what a shell reports for a
    tool stopped by SIGPIPE.
    """
    try:
        try:
            code = _command(argv)
        except SystemExit:  # argparse's --help and usage errors print, then exit
            sys.stdout.flush()
            raise
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return code


def _command(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    platform.use_selector_event_loop()  # before any asyncio.run: psycopg needs it on Windows
    if argv[:1] == ["soak"]:
        from stock_manager.soak import main as soak_main

        return soak_main(argv[1:])
    if argv[:1] == ["replay"]:
        from stock_manager.replay import main as replay_main

        return replay_main(argv[1:])
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "up":
            return _up(args)
        if args.command == "secrets":
            return secrets_cmd.run(args)

        settings = load_settings()
        if args.command == "migrate":
            return asyncio.run(_migrate(settings))
        if args.command == "status":
            return asyncio.run(_status(settings, watch=args.watch, as_json=args.json))
        if args.command == "report":
            return asyncio.run(report_cmd.run(args, monitor_url(settings), settings.sm_data_dir))
        if args.command in ("halt", "resume", "flatten"):
            return asyncio.run(_set_state(settings, args.command, args.reason))
        if args.command == "calendar":
            return asyncio.run(calendar_cmd.run(args, settings.require_database()))
        if args.command == "export-day":
            return asyncio.run(dayfile_cmd.run_export(args, settings.require_database()))
        if args.command == "import-day":
            return asyncio.run(dayfile_cmd.run_import(args, settings.require_database()))
        if args.command == "healthcheck":
            return asyncio.run(_healthcheck(settings, args.service, args.max_age))
    except SettingsError as e:
        print(f"stock-manager: {e}", file=sys.stderr)
        return 2
    except MigrationError as e:
        print(f"stock-manager: migration failed: {e}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as e:
        print(f"stock-manager: cannot reach the database{_where()}: {redact(_first_line(e))}; check that "
              f"PostgreSQL is running there and that DATABASE_URL names it", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


def _where() -> str:
    """`` at user@host:port/db`` of DATABASE_URL for an error line (never its password), or nothing."""
    try:
        url = load_settings().database_url
        return f" at {describe(url)}" if url else ""
    except (SettingsError, psycopg.ProgrammingError):
        return ""


def _run(args: argparse.Namespace) -> int:
    if args.service == "kis-sim":
        from datetime import datetime

        from stock_manager.services.kis_sim.app import serve
        from stock_manager.services.kis_sim.config import SimConfig
        from stock_manager.services.kis_sim.replay import ReplayError

        config = None
        if any(v is not None for v in (args.seed, args.master, args.replay, args.speed, args.start)):
            config = SimConfig(env=args.env, seed=SimConfig.seed if args.seed is None else args.seed,
                               master_dir=args.master, replay=args.replay, clock_speed=args.speed or 1.0,
                               clock_start=datetime.fromisoformat(args.start) if args.start else None)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve(args.host, args.port, args.env, config, data_dir=args.data_dir))
        except ReplayError as e:  # --replay names a file that cannot be replayed
            print(f"stock-manager kis-sim: {e}", file=sys.stderr)
            return 2
        except FileNotFoundError as e:  # --master names a folder without master files
            print(f"stock-manager kis-sim: {e}", file=sys.stderr)
            return 2
        return 0
    if args.service == "dashboard":
        from stock_manager.dashboard.main import main as svc_main
    elif args.service == "pricesync":
        from stock_manager.services.pricesync.main import main as svc_main
    elif args.service == "strategy":
        from stock_manager.services.strategy.main import main as svc_main
    else:
        from stock_manager.services.execution.main import main as svc_main
    return svc_main()


def _database_url(settings: Settings) -> tuple[str, object | None]:
    """DATABASE_URL, or the embedded server's when it is unset."""
    if settings.database_url:
        return settings.database_url, None
    from stock_manager.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.sm_data_dir)
    print(f"stock-manager: starting the embedded PostgreSQL under {embedded.data_dir}", file=sys.stderr)
    return embedded.start(), embedded


async def _migrate(settings: Settings) -> int:
    url, embedded = _database_url(settings)
    try:
        applied = await migrate(url)
        await calendar_cmd.refresh(url)  # the library's days, so services never load pandas
        if settings.sm_db_role_password is not None:
            await set_role_passwords(url, settings.sm_db_role_password.get_secret_value())
    finally:
        if embedded is not None:
            embedded.stop()  # type: ignore[attr-defined]
    print("migrations: " + (", ".join(applied) if applied else "up to date"))
    return 0


def monitor_url(settings: Settings) -> str:
    """Monitoring reads as sm_readonly (``Settings.role_url``; sslmode and the rest carry over)."""
    settings.require_database()
    return settings.role_url("readonly")


async def _status(settings: Settings, *, watch: bool, as_json: bool) -> int:
    url = monitor_url(settings)
    while True:
        try:
            snap = await status_mod.snapshot(url)
        except psycopg.OperationalError as e:
            print(f"stock-manager: cannot read the monitor views as sm_readonly: {redact(_first_line(e))}",
                  file=sys.stderr)
            return 1
        if as_json:
            print(json.dumps(snap, default=str))
        else:
            if watch:
                print("\x1b[2J\x1b[H", end="")
            print(status_mod.render(snap))
        if not watch:
            return 0
        await asyncio.sleep(2)


async def _set_state(settings: Settings, command: str, reason: str) -> int:
    state = {"halt": "HALTED", "resume": "ACTIVE", "flatten": "REDUCING"}[command]
    if command == "flatten":
        reason = f"FLATTEN: {reason}"  # Strategy liquidates everything while the reason says so
    who = f"cli:{os.environ.get('USER', 'operator')}@{socket.gethostname()}"
    async with await connect(settings.require_database(), autocommit=False) as conn:
        await conn.execute(status_mod.Q["set_trading_state"], {"state": state, "reason": reason, "changed_by": who})
        await conn.execute(
            status_mod.Q["insert_cli_event"],
            {"level": "INFO" if state == "ACTIVE" else "WARN", "kind": f"Trading{command.capitalize()}",
             "message": f"trading state set to {state}: {reason}", "data": Jsonb({"by": who})},
        )
        await conn.commit()
    print(f"trading state: {state}")
    return 0


async def _healthcheck(settings: Settings, service: str, max_age: float) -> int:
    try:
        async with await connect(monitor_url(settings)) as conn:
            cur = await conn.execute(status_mod.Q["healthcheck"], {"service": service, "max_age_s": max_age})
            row = await cur.fetchone()
    except psycopg.Error:
        return 1
    return 0 if row is not None and row["fresh"] else 1


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


# --- up -----------------------------------------------------------------------------------------

def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _up(args: argparse.Namespace) -> int:
    overrides = {"sm_mode": Mode(args.mode)} if args.mode else {}
    settings = load_settings(**overrides)
    if settings.sm_mode is Mode.LIVE and not args.live_ok:
        print("stock-manager: live mode trades real money; add --i-understand-live-trading to start it",
              file=sys.stderr)
        return 2
    if settings.sm_mode is not Mode.SIM:
        for name in ("kis_app_key", "kis_app_secret", "kis_account", "kis_hts_id"):
            settings.credential(name)  # raises a one-line SettingsError naming the missing one
    url, embedded = _database_url(settings)
    try:
        applied = asyncio.run(migrate(url))
        asyncio.run(calendar_cmd.refresh(url))
        if settings.sm_db_role_password is not None:
            asyncio.run(set_role_passwords(url, settings.sm_db_role_password.get_secret_value()))
        print(f"stock-manager: migrations {'applied: ' + ', '.join(applied) if applied else 'up to date'}",
              file=sys.stderr)
        return asyncio.run(_supervise(settings, url, show_status=not args.no_status))
    finally:
        if embedded is not None:
            embedded.stop()  # type: ignore[attr-defined]


def child_specs(settings: Settings, database_url: str) -> list[ChildSpec]:
    env = {"DATABASE_URL": database_url, "SM_MODE": settings.sm_mode.value, "PYTHONUNBUFFERED": "1"}
    exe = [sys.executable, "-m", "stock_manager"]
    specs: list[ChildSpec] = []
    if settings.sm_mode is Mode.SIM:
        parts = urlsplit(settings.rest_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 8800
        # the simulator keeps its accounts and clock next to the database, so `up` resumes both
        sim_dir = (settings.sm_data_dir / "kis-sim").resolve()
        specs.append(ChildSpec("kis-sim", [*exe, "run", "kis-sim", "--host", host, "--port", str(port),
                                           "--env", settings.kis_env, "--data-dir", str(sim_dir)], env,
                               ready=lambda: _port_open(host, port)))
    host_name = socket.gethostname()
    # a stable instance id: a restarted service takes over its own heartbeat row
    specs.extend(ChildSpec(s, [*exe, "run", s], {**env, "SM_INSTANCE_ID": f"{host_name}-{s}"})
                 for s in (*SERVICES, "dashboard"))
    return specs


async def _supervise(settings: Settings, database_url: str, *, show_status: bool) -> int:
    sup = Supervisor(child_specs(settings, database_url), log_dir=settings.sm_data_dir / "logs")
    print(f"stock-manager: dashboard at http://{settings.sm_dashboard_addr}/ (metrics at /metrics)", file=sys.stderr)
    screen_url = monitor_url(settings.model_copy(update={"database_url": database_url}))
    platform.on_stop_signals(asyncio.get_running_loop(), sup.request_stop)
    screen = asyncio.create_task(_draw(sup, screen_url)) if show_status else None
    try:
        await sup.run()
    finally:
        if screen is not None:
            screen.cancel()
    print("stock-manager: stopped", file=sys.stderr)
    return 0


async def _draw(sup: Supervisor, database_url: str) -> None:
    tty = sys.stdout.isatty()
    last = 0.0
    while True:
        await asyncio.sleep(2 if tty else 1)
        if not tty and time.monotonic() - last < 15:
            continue
        last = time.monotonic()
        children = [{"name": c.spec.name, "state": c.state, "pid": c.pid, "restarts": c.restarts,
                     "uptime_s": c.uptime_s} for c in sup.children]
        try:
            text = status_mod.render(await status_mod.snapshot(database_url), children)
        except Exception as e:  # the screen must never take the supervisor down
            text = f"(status unavailable: {type(e).__name__})"
        try:
            if tty:
                print("\x1b[2J\x1b[H" + text + "\n\nCtrl-C stops everything.", flush=True)
            else:
                print(text, flush=True)
        except BrokenPipeError:  # `up | head`: the reader left; the system keeps running unseen
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
