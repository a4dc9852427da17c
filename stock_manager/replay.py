"""``stock-manager replay FILE [--speed 60] [--strategy SPEC]``: a recorded day through the real services.

The simulator plays the day file as its market (``run kis-sim --replay FILE``, docs/replay.md), and
the three services run against it unchanged, each its own process under the real supervisor, on a
fresh database: created on the server of ``DATABASE_URL``, else on the local PostgreSQL at
127.0.0.1:5432, else on the embedded one (under ``SM_DATA_DIR``).  The market clock runs from 09:00
of the recorded day at ``--speed`` until the account is flat after the close (18:05 at the latest),
the same whole day ``stock-manager soak --day`` runs, without faults, kills or a restart.

It ends with the day report (``stock-manager report``: ``OUT/index.html``), the day's round trips
as ``OUT/round-trips.json`` (what two replays of one file are compared by), the soak's invariants,
and how the stack kept up: the replay clock's achieved speed, how far PriceSync ran behind it, and
the intent-to-order latency.  It exits 1 when an invariant broke, 2 on a bad file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg

from stock_manager.shared.clock import KST, SystemClock
from stock_manager.shared.dayfile import DayFileError, read_meta
from stock_manager.shared.db.pool import connect
from stock_manager.shared.resources import package_path
from stock_manager.shared.sql import load_queries
from stock_manager.soak import DAY_END, DAY_START, Result, Soak

Q = load_queries(package_path(__package__, "sql", "replay.sql"))
LOCAL_SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@dataclass
class Replayed:
    """What one replay gave: the invariants, the trips and how the stack kept up."""

    result: Result
    trade_date: date
    wall_s: float
    market_s: float
    trips: list[dict[str, Any]] = field(default_factory=list)
    lag: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None

    @property
    def speed(self) -> float:
        return self.market_s / self.wall_s if self.wall_s else 0.0


def trade_date_of(path: Path) -> date:
    """The recorded day of a day file; DayFileError when it is not one."""
    return date.fromisoformat(str(read_meta(path)["trade_date"]))


class ReplaySoak(Soak):
    """The soak's whole day, remembering the last market time it saw (the simulator stops with the stack)."""

    last_seen: datetime | None = None

    async def _sim_now(self) -> datetime:
        self.last_seen = now = await super()._sim_now()
        return now


def replay_soak(path: Path, admin_url: str, *, speed: float, log_dir: Path, workers: int = 3,
                strategy: str | None = None, strategy_version: str = "breakout-v1",
                params: dict[str, Any] | None = None) -> ReplaySoak:
    """The whole recorded day, 09:00 to flat after the close, on a simulator replaying ``path``."""
    day = trade_date_of(path)
    hh, mm = (int(x) for x in DAY_START.split(":"))
    start = datetime.combine(day, datetime.min.time().replace(hour=hh, minute=mm), KST)
    minutes = (datetime.combine(day, DAY_END, KST) - start).total_seconds() / 60
    return ReplaySoak(admin_url, start=start, minutes=minutes, speed=speed, kill_every_s=0, faults=False,
                workers=workers, seed=1, log_dir=log_dir, strategy=strategy, strategy_version=strategy_version,
                params=params, sim_args=["--replay", str(path.resolve())], db_prefix="sm_replay")


async def run_replay(soak: ReplaySoak, out: Path, *, keep: bool = False) -> Replayed:
    """Run the day, then read its trips and lags and write its report, then drop the database."""
    from stock_manager.report.build import read, write_report  # matplotlib, for this command only

    t0 = time.monotonic()
    try:
        result = await soak.run()
        wall_s = time.monotonic() - t0
        last = soak.last_seen or soak.end
        done = Replayed(result=result, trade_date=soak.start.date(), wall_s=wall_s,
                        market_s=max(0.0, (last - soak.start).total_seconds()))
        async with await connect(soak.url) as conn:
            day = await read(conn, done.trade_date, SystemClock())
            done.lag = {name: await (await conn.execute(Q[name])).fetchall()
                        for name in ("tick_lag", "freshness_lag", "intent_to_order")}
        done.report = await asyncio.to_thread(write_report, day, out)
        done.trips = [{"symbol": t.symbol, "entry_ts": t.entry_ts.isoformat(), "exit_ts": t.exit_ts.isoformat(),
                       "qty": t.qty, "avg_entry_price": str(t.avg_entry_price),
                       "avg_exit_price": str(t.avg_exit_price), "pnl": str(t.pnl), "exit_reason": t.exit_reason,
                       "entry_reason": t.entry_reason} for t in day.trips]
        (out / "round-trips.json").write_text(json.dumps(done.trips, indent=1), encoding="utf-8")
        return done
    finally:
        if not keep:
            await soak.drop_db()



def same_trips(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> tuple[int, int]:
    """(trips in both, trips in either) by symbol, entry and exit minute, quantity and exit reason."""
    def key(t: dict[str, Any]) -> tuple[Any, ...]:
        return (t["symbol"], t["entry_ts"][:16], t["exit_ts"][:16], t["qty"], t["exit_reason"])
    ka, kb = {key(t) for t in a}, {key(t) for t in b}
    return len(ka & kb), len(ka | kb)


def agreement(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """How alike two replays' round trips are, from loose to strict: the symbols traded, the entries
    (symbol and entry minute), the whole trips (``same_trips``), and the realized PnL of each."""
    def jaccard(x: set[Any], y: set[Any]) -> str:
        return f"{len(x & y)} of {len(x | y)}"
    both, either = same_trips(a, b)
    return {
        "trips": f"{len(a)} and {len(b)}",
        "symbols traded in both": jaccard({t["symbol"] for t in a}, {t["symbol"] for t in b}),
        "entries in both (symbol, minute)": jaccard({(t["symbol"], t["entry_ts"][:16]) for t in a},
                                                    {(t["symbol"], t["entry_ts"][:16]) for t in b}),
        "whole trips in both": f"{both} of {either}",
        "realized": f"{sum(float(t['pnl']) for t in a):,.0f} and {sum(float(t['pnl']) for t in b):,.0f} KRW",
    }


def render(done: Replayed) -> str:
    lines = [done.result.render(), "", f"replayed {done.trade_date}: {done.market_s / 60:.0f} market minutes in "
             f"{done.wall_s:.0f} s wall, {done.speed:.1f}x"]
    tick = (done.lag.get("tick_lag") or [{}])[0]
    if tick.get("n"):
        lines.append(f"PriceSync behind the replay clock (WS prints, market s): p50 {tick['p50_s']:.2f}, "
                     f"p99 {tick['p99_s']:.2f}, max {tick['max_s']:.2f} over {tick['n']} prints")
    for f in done.lag.get("freshness_lag") or []:
        lines.append(f"latest data per symbol, {f['source']}: lag p50 {f['p50_s']:.2f} s, p99 {f['p99_s']:.2f} s "
                     f"({f['n']} symbols)")
    io = (done.lag.get("intent_to_order") or [{}])[0]
    if io.get("n"):
        lines.append(f"intent to order at the broker: p50 {io['p50_ms']:.0f} ms, p99 {io['p99_ms']:.0f} ms wall "
                     f"({io['n']} orders)")
    pnl = sum((float(t["pnl"]) for t in done.trips), 0.0)
    lines.append(f"round trips: {len(done.trips)}, realized {pnl:,.0f} KRW")
    if done.report is not None:
        lines.append(f"report: {done.report}")
    return "\n".join(lines)


def _server_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def admin_server(data_dir: Path) -> tuple[str, Any]:
    """Where the fresh database goes: DATABASE_URL's server, the local one, else an embedded one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    if _server_answers(LOCAL_SERVER):
        return LOCAL_SERVER, None
    from stock_manager.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(data_dir)
    print(f"stock-manager replay: starting the embedded PostgreSQL under {embedded.data_dir}", file=sys.stderr)
    return embedded.start(), embedded


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="stock-manager replay", description=__doc__.split("\n\n")[0])
    ap.add_argument("file", type=Path, help="a day file (stock-manager export-day, or kis_sim.make_day)")
    ap.add_argument("--speed", type=float, default=60, help="market seconds per wall second (default 60)")
    ap.add_argument("--strategy", default=None, metavar="SPEC",
                    help="SM_STRATEGY for the day: package.module:Class, path/to/file.py:Class or an entry-point name")
    ap.add_argument("--strategy-version", default="breakout-v1", metavar="NAME-VERSION",
                    help="the strategy's name-version (for --params)")
    ap.add_argument("--params", type=Path, default=None, metavar="JSON",
                    help="the day's strategy parameters as a JSON object (default: the strategy's own defaults)")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, metavar="DIR",
                    help="the report's folder (default SM_DATA_DIR/replays/DATE-HHMMSS)")
    ap.add_argument("--keep", action="store_true", help="keep the replay's database afterwards")
    args = ap.parse_args(argv)
    try:
        day = trade_date_of(args.file)
    except DayFileError as e:
        print(f"stock-manager replay: {e}", file=sys.stderr)
        return 2
    params: dict[str, Any] | None = None
    if args.params is not None:
        try:
            params = json.loads(args.params.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            print(f"stock-manager replay: --params {args.params}: {e}", file=sys.stderr)
            return 2
        if not isinstance(params, dict):
            print(f"stock-manager replay: --params {args.params}: not a JSON object", file=sys.stderr)
            return 2
    data_dir = Path(os.environ.get("SM_DATA_DIR") or ".stock-manager")
    stamp = datetime.now(KST).strftime("%H%M%S")
    out: Path = args.out or data_dir / "replays" / f"{day.isoformat()}-{stamp}"
    admin, embedded = admin_server(data_dir)
    try:
        soak = replay_soak(args.file, admin, speed=args.speed, log_dir=out / "logs", workers=args.workers,
                           strategy=args.strategy, strategy_version=args.strategy_version, params=params)
        done = asyncio.run(run_replay(soak, out, keep=args.keep))
    finally:
        if embedded is not None:
            embedded.stop()
    print(render(done), flush=True)
    if not done.result.ok:
        print("REPLAY FAILED: an invariant broke", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
