"""Strategy benchmark: a full-universe scan and lock acquisition under contention.

    python bench/strategy_bench.py [--symbols 2500] [--bars 390] [--workers 8] [--rounds 400]

Creates a scratch database on 127.0.0.1:5432, migrates it with ``stock_manager.shared.db.migrate``, seeds a
universe (symbols, best prices, freshness, a day of 1-minute candles), then measures:

* the scanner's full poll (read the universe with its indicators in one statement, filter and
  evaluate in Python, store candidates, record the event), as the ``sm_strategy`` role;
* the atomic lock acquire with N worker *processes* contending for a handful of symbols (each
  process its own connection, acquire -> hold ~1 ms -> release, or back off when refused), and the
  full acquire a worker does (statement + LockAcquired/LockRejected event + commit).

Prints a table.  Not a test: nothing here asserts, and CI never runs it.  The database is dropped
at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing as mp
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stock_manager.services.strategy import locks
from stock_manager.services.strategy.config import load_config
from stock_manager.services.strategy.runtime import Runtime
from stock_manager.services.strategy.scanner import Scanner
from stock_manager.shared.clock import KST, ManualClock
from stock_manager.shared.db.migrate import migrate
from stock_manager.shared.db.pool import open_pool
from stock_manager.shared.market_rules import tick_size

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=KST)


def url(db: str, user: str = "postgres") -> str:
    return f"host=127.0.0.1 port=5432 user={user} dbname={db}"


def seed(db: str, n_symbols: int, n_bars: int) -> None:
    """A universe like the simulator's: most symbols quiet, some trending into a breakout."""
    rng = random.Random(7)
    start = NOW - timedelta(minutes=n_bars)
    with psycopg.connect(url(db)) as conn:
        sym_buf, px_buf, fr_buf, c_buf = io.StringIO(), io.StringIO(), io.StringIO(), io.StringIO()
        for k in range(n_symbols):
            sym = f"{100000 + k * 7:06d}"
            base = rng.choice([1_000, 5_000, 10_000, 30_000, 80_000])
            trend = rng.random() < 0.1
            price = base
            tick = tick_size(base)
            for b in range(n_bars):
                step = (0.0004 if trend else 0.0) + rng.gauss(0, 0.002)
                price = min(int(base * 1.25), max(int(base * 0.8), int(price * (1 + step))))
                price = max(tick, price // tick * tick)
                hi, lo = price + tick, max(tick, price - tick)
                ts = start + timedelta(minutes=b)
                c_buf.write(f"{sym}\t{ts.isoformat()}\t{price}\t{hi}\t{lo}\t{price}\t1000\t{price * 1000}\t10\tt\n")
            last = price + (tick * 3 if trend else 0)
            upper = int(base * 1.3) // tick * tick
            sym_buf.write(f"{sym}\tS{k}\tKOSPI\t{base}\t{upper}\t{int(base * 0.7)}\tf\n")
            vol = rng.randint(1_000, 2_000_000)
            px_buf.write(f"{sym}\t{last}\t{last - tick}\t{last}\t{vol}\t{vol * last}\t"
                         f"{round((last / base - 1) * 100, 2)}\tWS\t{(NOW - timedelta(seconds=3)).isoformat()}\n")
            status = "STALE" if rng.random() < 0.02 else "FRESH"
            fr_buf.write(f"{sym}\tWS\t{status}\n")
        with conn.cursor() as cur:
            for table, cols, buf in (
                ("market.symbols", "symbol, name, market, base_price, upper_limit, lower_limit, halted", sym_buf),
                ("market.prices_best", "symbol, price, bid, ask, volume, turnover, change_pct, source, ts", px_buf),
                ("market.freshness", "symbol, source, status", fr_buf),
                ("market.candles", "symbol, bucket_ts, open, high, low, close, volume, turnover, n_ticks, closed",
                 c_buf),
            ):
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                    cp.write(buf.getvalue())
        conn.execute("ANALYZE")
        conn.commit()


async def bench_scan(db: str, runs: int) -> tuple[list[float], list[float], int, int]:
    pool = await open_pool(url(db, "sm_strategy"), max_size=4)
    try:
        rt = Runtime(pool, ManualClock(NOW), load_config(), "bench")
        scanner = Scanner(rt)
        await scanner.run_once()  # warm caches and seed the params row
        full, read = [], []
        res = None
        for _ in range(runs):
            t0 = time.perf_counter()
            res = await scanner.run_once()
            full.append((time.perf_counter() - t0) * 1000)
            async with pool.connection() as conn:
                pv = await rt.params(conn)
            t0 = time.perf_counter()
            await scanner.fetch_rows(NOW, pv.params)
            read.append((time.perf_counter() - t0) * 1000)
        assert res is not None
        return full, read, res.outcome.universe, res.outcome.signals
    finally:
        await pool.close()


def _lock_worker(args: tuple[str, int, int, int, float, bool, float]) -> tuple[list[float], int, int]:
    db, idx, rounds, n_symbols, start_at, with_events, think_s = args
    return asyncio.run(_lock_loop(db, idx, rounds, n_symbols, start_at, with_events, think_s))


async def _lock_loop(db: str, idx: int, rounds: int, n_symbols: int, start_at: float,
                     with_events: bool, think_s: float) -> tuple[list[float], int, int]:
    logger.remove()  # the log sink is not what is measured
    rng = random.Random(idx)
    wid = f"bench-w{idx}"
    lat: list[float] = []
    won = lost = 0
    async with await psycopg.AsyncConnection.connect(url(db, "sm_strategy"), autocommit=not with_events,
                                                     row_factory=psycopg.rows.dict_row) as conn:
        await conn.execute("SELECT 1")
        await asyncio.sleep(max(0.0, start_at - time.time()))  # all processes start together
        for _ in range(rounds):
            sym = f"{rng.randrange(n_symbols):06d}"
            t0 = time.perf_counter()
            if with_events:
                ok = await locks.acquire_lock(conn, sym, wid, 30, NOW)
                await conn.commit()
            else:
                ok = await locks.acquire(conn, sym, wid, 30) is not None
            lat.append((time.perf_counter() - t0) * 1000)
            if ok:
                won += 1
                await asyncio.sleep(think_s)  # hold it a moment
                await locks.release(conn, sym, wid)
                if with_events:
                    await conn.commit()
            else:
                lost += 1
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think_s)  # a worker does other things between tries
    return lat, won, lost


def bench_locks(db: str, workers: int, rounds: int, n_symbols: int, with_events: bool,
                think_s: float) -> tuple[list[float], int, int]:
    ctx = mp.get_context("spawn")
    start_at = time.time() + 3.0
    with ctx.Pool(workers) as pool:
        results = pool.map(_lock_worker, [(db, i, rounds, n_symbols, start_at, with_events, think_s)
                                                 for i in range(workers)])
    lat = [x for r in results for x in r[0]]
    return lat, sum(r[1] for r in results), sum(r[2] for r in results)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", type=int, default=2500)
    ap.add_argument("--bars", type=int, default=390)
    ap.add_argument("--scan-runs", type=int, default=10)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=400)
    ap.add_argument("--lock-symbols", type=int, default=4, help="symbols the workers fight over")
    ap.add_argument("--think-ms", type=float, default=5.0, help="hold time and mean pause between tries")
    args = ap.parse_args()

    db = f"sm_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        asyncio.run(migrate(url(db)))
        t0 = time.perf_counter()
        seed(db, args.symbols, args.bars)
        print(f"seeded {args.symbols} symbols x {args.bars} one-minute bars in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)
        full, read, universe, signals = asyncio.run(bench_scan(db, args.scan_runs))
        raw, won, lost = bench_locks(db, args.workers, args.rounds, args.lock_symbols, with_events=False,
                                     think_s=args.think_ms / 1000)
        evt, won_e, lost_e = bench_locks(db, args.workers, args.rounds, args.lock_symbols, with_events=True,
                                         think_s=args.think_ms / 1000)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    rows: list[tuple[str, str, str, str, str, str]] = [
        (f"scan: full poll ({universe} symbols, {signals} signals)", str(len(full)),
         f"{statistics.median(full):.1f}", f"{pct(full, 99):.1f}", f"{max(full):.1f}", "<= 1000 ms"),
        ("scan: universe read (one SQL statement)", str(len(read)), f"{statistics.median(read):.1f}",
         f"{pct(read, 99):.1f}", f"{max(read):.1f}", ""),
        (f"lock acquire, {args.workers} processes on {args.lock_symbols} symbols ({won} won/{lost} refused)",
         str(len(raw)), f"{statistics.median(raw):.2f}", f"{pct(raw, 99):.2f}", f"{max(raw):.2f}", "p99 <= 5 ms"),
        (f"lock acquire + event + commit ({won_e} won/{lost_e} refused)", str(len(evt)),
         f"{statistics.median(evt):.2f}", f"{pct(evt, 99):.2f}", f"{max(evt):.2f}", ""),
    ]
    head = ("measure", "n", "p50 ms", "p99 ms", "max ms", "target")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
