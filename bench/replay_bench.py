"""Replay a whole recorded day of 2,500 symbols through every service (issue #14's benchmark).

``python -m bench.replay_bench [--symbols 2500] [--speed 60] [--file DAY]`` replays ``DAY`` (by
default a synthetic day of ``--symbols`` symbols made once by ``kis_sim.make_day`` and kept under
bench/out/) with ``stock-manager replay``'s own code: the simulator in replay mode and the three
services as processes under the real supervisor, on a fresh database.  While it runs, a sampler
reads the simulator's clock and the resident memory of every process of the stack once a second.
It prints one table:

- the achieved speed over the regular session (09:00 to 15:30 market time) and over the whole run;
- how far the stack ran behind the replay clock: PriceSync's prints (arrival less market time) and
  the latest data per symbol, and Strategy's intents to Execution's orders;
- the peak resident memory of the stack (simulator, services, supervisor), and of each process;
- whether the soak's invariants held (flat after the close, the broker and the database agree).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psutil

from bench.common import bench_dir, table
from stock_manager.replay import Replayed, ReplaySoak, render, replay_soak, run_replay
from stock_manager.shared.clock import kst
from tests.support.pg import find_server

SESSION = ("09:00:00", "15:30:00")
MEMORY_TARGET_MB = 2048
SPEED_TARGET = 60.0
# the benchmark day: a regular KRX trading day, the synthetic market's seed
BENCH_DATE = "2026-12-03"
BENCH_SEED = 1


@dataclass
class Sampler:
    """Once a second: the simulator's clock against the wall, and every stack process's RSS."""

    soak: ReplaySoak
    clock: list[tuple[float, datetime]] = field(default_factory=list)
    peak_total_mb: float = 0.0
    peak_by_name: dict[str, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        me = psutil.Process(os.getpid())
        with httpx.Client(base_url=self.soak.sim_url, timeout=1) as http:
            while not self.stop.wait(1.0):
                with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                    self.clock.append((time.monotonic(), datetime.fromisoformat(http.get("/sim/clock").json()["now"])))
                total = 0.0
                for p in [me, *me.children(recursive=True)]:
                    try:
                        mb = p.memory_info().rss / 2**20
                        name = _name(p.cmdline())
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        continue
                    total += mb
                    self.peak_by_name[name] = max(self.peak_by_name.get(name, 0.0), mb)
                self.peak_total_mb = max(self.peak_total_mb, total)

    def speed_between(self, lo: str, hi: str) -> float | None:
        """Market seconds per wall second from the first sample at or after ``lo`` to the first at or after ``hi``."""
        def first(at: str) -> tuple[float, datetime] | None:
            return next(((w, m) for w, m in self.clock if kst(m).strftime("%H:%M:%S") >= at), None)
        a, b = first(lo), first(hi)
        if a is None or b is None or b[0] <= a[0]:
            return None
        return (b[1] - a[1]).total_seconds() / (b[0] - a[0])


def _name(cmdline: list[str]) -> str:
    for svc in ("kis-sim", "pricesync", "strategy", "execution"):
        if svc in cmdline:
            return svc
    return "bench (supervisor)" if any("replay_bench" in c for c in cmdline) else (cmdline[0] if cmdline else "?")


def day_file(symbols: int, streamed: int) -> Path:
    path = bench_dir() / f"day-{BENCH_DATE}-s{BENCH_SEED}-{symbols}.smday"
    if not path.exists():
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "stock_manager.services.kis_sim.make_day", "--seed", str(BENCH_SEED),
                        "--date", BENCH_DATE, "--symbols", str(symbols), "--streamed", str(streamed),
                        "--out", str(path)], check=True)
        print(f"made {path} in {time.monotonic() - t0:.0f} s ({path.stat().st_size / 2**20:.1f} MB)", flush=True)
    return path


async def _replay(soak: ReplaySoak, out: Path) -> tuple[Replayed, Sampler]:
    sampler = Sampler(soak)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    try:
        return await run_replay(soak, out), sampler
    finally:
        sampler.stop.set()
        thread.join(5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.replay_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", type=int, default=2500)
    ap.add_argument("--streamed", type=int, default=40, help="symbols with books in the made day (as if streamed)")
    ap.add_argument("--speed", type=float, default=SPEED_TARGET)
    ap.add_argument("--file", type=Path, default=None, help="replay this day file instead of a made one")
    args = ap.parse_args(argv)
    path = args.file or day_file(args.symbols, args.streamed)
    out = bench_dir() / "replay"
    soak = replay_soak(path, find_server().url("postgres"), speed=args.speed, log_dir=out / "logs")
    done, sampler = asyncio.run(_replay(soak, out))
    print(render(done))
    session = sampler.speed_between(*SESSION)
    tick = (done.lag.get("tick_lag") or [{}])[0]
    fresh = {r["source"]: r for r in done.lag.get("freshness_lag") or []}
    io = (done.lag.get("intent_to_order") or [{}])[0]
    per = ", ".join(f"{k} {v:.0f}" for k, v in sorted(sampler.peak_by_name.items(), key=lambda kv: -kv[1]))
    rows = [
        ("day", f"{path.name} ({path.stat().st_size / 2**20:.1f} MB)", ""),
        ("speed 09:00-15:30", f"{session:.1f}x" if session else "n/a", f">= {SPEED_TARGET:g}x: "
         + ("PASS" if session and session >= SPEED_TARGET * 0.98 else "FAIL")),
        ("speed, the whole run", f"{done.speed:.1f}x ({done.market_s / 60:.0f} market min in {done.wall_s:.0f} s)", ""),
        ("PriceSync behind the clock (WS prints)",
         f"p50 {tick['p50_s']:.2f} s, p99 {tick['p99_s']:.2f} s, max {tick['max_s']:.2f} s market "
         f"(p99 {tick['p99_s'] / args.speed * 1000:.0f} ms wall)" if tick.get("n") else "no WS prints", ""),
        *((f"latest data lag, {src}", f"p50 {r['p50_s']:.2f} s, p99 {r['p99_s']:.2f} s ({r['n']} symbols)", "")
          for src, r in fresh.items()),
        ("intent to order", f"p50 {io['p50_ms']:.0f} ms, p99 {io['p99_ms']:.0f} ms wall ({io['n']} orders)"
         if io.get("n") else "no orders", ""),
        ("peak RSS, the stack", f"{sampler.peak_total_mb:.0f} MB", f"<= {MEMORY_TARGET_MB} MB: "
         + ("PASS" if sampler.peak_total_mb <= MEMORY_TARGET_MB else "FAIL")),
        ("peak RSS per process (MB)", per, ""),
        ("invariants", "all held" if done.result.ok else "FAILED", "PASS" if done.result.ok else "FAIL"),
        ("round trips", str(len(done.trips)), ""),
    ]
    print()
    print(table(f"replay of a whole day, {args.symbols} symbols at {args.speed:g}x, 2 cores", rows))
    return 0 if done.result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
