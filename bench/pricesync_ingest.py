"""Benchmark: PriceSync's ingest pipeline at a sustained tick rate, on a real database.

    python bench/pricesync_ingest.py [--rate 22000] [--seconds 20] [--source ws|direct]

Synthetic H0STCNT0 frames (46 fields, several records per frame) go through the real code path:

* ``--source ws`` (default): a separate process serves them over a WebSocket speaking the KIS
  protocol; the real ``KisWebSocketClient`` receives and parses them and the real ``WsFeed``
  hands them to the real ``Ingest`` writer.  (The frame server uses the other core, as KIS would.)
* ``--source direct``: the frames are parsed in-process with the adapter's own
  ``parse_message``/``decode_frame`` and go through the same ``WsFeed``/``Ingest``; no socket.

A scratch database is created on the server (default 127.0.0.1:5432), migrated with
``stock_manager.shared.db.migrate``, written as the ``sm_pricesync`` role, and dropped afterwards.

Printed: the sustained rate into ``market.ticks`` + ``market.prices_best`` (rows counted in the
database at the end), and the latency from the moment PriceSync's reader has a parsed tick to the
commit that makes it visible in ``market.prices_best`` (p50/p99/max).  In ``ws`` mode the
adapter's own receive queue is sampled too (its depth is time a tick waited before that moment;
the adapter exposes no public counter, so the benchmark peeks at it).

Not a test and not timed in CI: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from loguru import logger  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from stock_manager.services.pricesync.feed import WsFeed  # noqa: E402
from stock_manager.services.pricesync.freshness import FreshnessRules, WsHealth  # noqa: E402
from stock_manager.services.pricesync.ingest import Ingest, IngestConfig, trade_dates_ahead  # noqa: E402
from stock_manager.services.pricesync.metrics import LatencyHistogram  # noqa: E402
from stock_manager.services.pricesync.relay import NoticeRelay  # noqa: E402
from stock_manager.services.pricesync.report import Reporter  # noqa: E402
from stock_manager.shared import runtime  # noqa: E402
from stock_manager.shared.clock import KST, ScaledClock  # noqa: E402
from stock_manager.shared.db.migrate import migrate  # noqa: E402
from stock_manager.shared.db.pool import open_pool  # noqa: E402
from stock_manager.shared.kis import ws_frames as wf  # noqa: E402
from stock_manager.shared.kis.endpoints import KisEnv  # noqa: E402
from stock_manager.shared.kis.models import ApprovalKey  # noqa: E402
from stock_manager.shared.kis.ws import KisWebSocketClient, Subscription, WsEvent  # noqa: E402
from stock_manager.shared.kis.ws_frames import Trade  # noqa: E402

MARKET_START = datetime(2026, 11, 23, 10, 0, 0, tzinfo=KST)  # a Monday, mid-session

# SELN_CNTG_CSNU (field 15), which PriceSync does not use, carries the frame's send time
# (monotonic ms, the same clock in every process) so that the whole path can be timed.
SENT_MARK = "999999999"
_MARK = "^" + SENT_MARK + "^"


def stamp(frame: str) -> str:
    return frame.replace(_MARK, f"^{int(time.monotonic() * 1000) % 1_000_000_000:09d}^")


# --- synthetic frames ---------------------------------------------------------------------------------


def symbols(n: int) -> list[str]:
    rng = random.Random(7)
    out: set[str] = set()
    while len(out) < n:
        out.add(f"{rng.randrange(1, 99_999):05d}0")
    return sorted(out)


def record(symbol: str, hhmmss: str, price: int, qty: int, cum: int, seq: int) -> list[str]:
    """A 46-field H0STCNT0 record as KIS sends it."""
    base = price - 100
    return [
        symbol, hhmmss, str(price), "2", str(price - base), f"{(price - base) / base * 100:.2f}", f"{price:.2f}",
        str(base), str(price + 50), str(base - 50), str(price + 10), str(price), str(qty), str(cum),
        str(cum * price), SENT_MARK, str(seq + 3), "3", "101.20", str(cum // 2), str(cum - cum // 2), "1", "50.00",
        "80.10", "090000", "2", "100", "091500", "5", "-50", "090100", "2", "150", "20261123", "20", "N", "1200",
        "1500", "50000", "60000", "0.05", "1000000", "90.00", "0", "", str(base),
    ]


def frame_pool(second: int, syms: list[str], per_frame: int, n_frames: int) -> list[str]:
    """``n_frames`` frames for one market second (its HHMMSS), records spread over ``syms``."""
    rng = random.Random(second)
    t = MARKET_START.timestamp() + second
    hhmmss = datetime.fromtimestamp(t, KST).strftime("%H%M%S")
    frames = []
    for f in range(n_frames):
        recs = []
        for r in range(per_frame):
            sym = syms[(f * per_frame + r) % len(syms)]
            price = 10_000 + rng.randrange(0, 50) * 10
            recs.append(record(sym, hhmmss, price, rng.randrange(1, 500), 1_000_000 + second * 1000 + r, f))
        frames.append(wf.data_frame("H0STCNT0", recs))
    return frames


# --- the frame server (ws mode), run as a child process ---------------------------------------------------


async def serve_frames(port: int, rate: float, per_frame: int, n_symbols: int, seconds: float) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    syms = symbols(n_symbols)
    frames_per_s = max(1, int(rate / per_frame))
    pools = [frame_pool(s, syms, per_frame, min(frames_per_s, 400)) for s in range(int(seconds) + 30)]

    async def handler(conn: ServerConnection) -> None:
        started = asyncio.Event()

        async def reader() -> None:
            async for raw in conn:
                msg = json.loads(raw)
                inp = msg["body"]["input"]
                await conn.send(wf.ack_message(inp["tr_id"], inp["tr_key"], key="k" * 32, iv="i" * 16))
                started.set()

        read_task = asyncio.create_task(reader())
        await started.wait()
        t0 = time.monotonic()
        sent = 0
        with contextlib.suppress(Exception):
            while time.monotonic() - t0 < seconds:
                due = int((time.monotonic() - t0) * frames_per_s)
                while sent < due:
                    pool = pools[min(int(sent / frames_per_s), len(pools) - 1)]
                    await conn.send(stamp(pool[sent % len(pool)]))
                    sent += 1
                await asyncio.sleep(0.002)
        read_task.cancel()
        await asyncio.sleep(1)

    # plain frames: whether KIS negotiates permessage-deflate is not known, and compressing here
    # would charge zlib to both sides of the measurement
    async with serve(handler, "127.0.0.1", port, max_size=None, compression=None):
        await asyncio.sleep(seconds + 60)


# --- direct mode: the adapter's parse, in process ------------------------------------------------------


class DirectWs:
    """Stands in for the socket: frames decoded with the adapter's functions into its kind of queue."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[WsEvent | None] = asyncio.Queue()
        self.last_message_at: float | None = time.monotonic()
        self.connected = True
        self.active = frozenset({Subscription.trades("000000")})

    def replace(self, subs: Iterable[Subscription]) -> None:
        return None

    def feed(self, text: str) -> None:
        message = wf.parse_message(text)
        assert isinstance(message, wf.DataFrame)
        for rec in wf.decode_frame(message):
            self.queue.put_nowait(rec)
        self.last_message_at = time.monotonic()

    async def events(self) -> AsyncIterator[WsEvent]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item


async def produce_direct(ws: DirectWs, rate: float, per_frame: int, n_symbols: int, seconds: float) -> int:
    syms = symbols(n_symbols)
    frames_per_s = max(1, int(rate / per_frame))
    pools = [frame_pool(s, syms, per_frame, min(frames_per_s, 400)) for s in range(int(seconds) + 2)]
    t0 = time.monotonic()
    sent = 0
    while time.monotonic() - t0 < seconds:
        due = int((time.monotonic() - t0) * frames_per_s)
        while sent < due:
            pool = pools[min(int(sent / frames_per_s), len(pools) - 1)]
            ws.feed(stamp(pool[sent % len(pool)]))
            sent += 1
            if sent % 2 == 0:
                await asyncio.sleep(0)  # a socket reader yields about this often
        await asyncio.sleep(0.002)
    return sent * per_frame


class ProbeIngest(Ingest):
    """The real writer, plus a stopwatch: for one print in 16, the time from its frame leaving the
    server to the commit that made it visible (the socket and the adapter included)."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.end_to_end = LatencyHistogram()
        self._probes: list[int] = []
        self._n = 0

    def add_trade(self, t: Trade) -> None:
        super().add_trade(t)
        self._n += 1
        if not self._n & 15:
            self._probes.append(t.sell_count)

    async def _write(self, conn: Any, ticks: Any, latest: Any, books: Any, now: Any, *args: Any, **kw: Any) -> None:
        probes, self._probes = self._probes, []
        await super()._write(conn, ticks, latest, books, now, *args, **kw)
        done_ms = int(time.monotonic() * 1000) % 1_000_000_000
        self.end_to_end.add_many(done_ms / 1000.0, [(s if s <= done_ms else s - 1_000_000_000) / 1000.0
                                                    for s in probes])


class _Approvals:
    async def approval_key(self) -> ApprovalKey:
        return ApprovalKey(SecretStr("bench-approval"))


# --- the run ----------------------------------------------------------------------------------------------


async def wait_port(port: int, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise RuntimeError("frame server did not start")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    server = conninfo_to_dict(args.dsn)
    name = f"sm_bench_{uuid.uuid4().hex[:8]}"
    admin = make_conninfo("", **{**server, "dbname": server.get("dbname", "postgres")})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        scratch = make_conninfo("", **{**server, "dbname": name})
        await migrate(scratch)
        role_url = make_conninfo("", **{**server, "dbname": name, "user": "sm_pricesync"})
        return await measure(args, role_url, scratch)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def measure(args: argparse.Namespace, role_url: str, scratch: str) -> dict[str, Any]:
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    clock = ScaledClock(MARKET_START, 1.0)
    pool = await open_pool(role_url, max_size=2)
    child: asyncio.subprocess.Process | None = None
    ws: Any
    try:
        feed: WsFeed | None = None
        ingest = ProbeIngest(role_url, clock, rules=FreshnessRules(),
                        ws_health=lambda: feed.health() if feed is not None else WsHealth(False, frozenset(), 0.0),
                        config=IngestConfig(batch_window_s=args.batch_ms / 1000.0))
        await ingest.ensure_days(*trade_dates_ahead(clock.now()))

        async def no_emit(*a: Any, **k: Any) -> None:
            return None

        report = Reporter(no_emit)
        relay = NoticeRelay(pool, clock, "H0STCNI0")
        if args.source == "ws":
            port = free_port()
            child = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--serve", str(port), "--rate", str(args.rate), "--seconds",
                str(args.seconds), "--per-frame", str(args.per_frame), "--symbols", str(args.symbols), cwd=ROOT,
            )
            await wait_port(port, 30.0)
            ws = KisWebSocketClient(_Approvals(), env=KisEnv.REAL, url=f"ws://127.0.0.1:{port}")
            ws.replace([Subscription.trades("005930")])
        else:
            ws = DirectWs()
        feed = WsFeed(ws, ingest, relay, clock=clock, report=report, on_refused=lambda s: None,
                      on_status=lambda: None)
        writer = asyncio.create_task(ingest.run())
        reader = asyncio.create_task(feed.run())
        sampler_depth = 0
        pending_max = 0
        t0 = time.monotonic()
        if args.source == "ws":
            ws.start()
            offered = 0
        else:
            producer = asyncio.create_task(produce_direct(ws, args.rate, args.per_frame, args.symbols, args.seconds))
        if not args.default_gc:
            runtime.tune_gc()  # as every service does after start-up
        # warm-up excluded from the rate: count ticks written between warm-up and the end
        await asyncio.sleep(args.warmup)
        ingest.metrics.latency.reset()
        ingest.end_to_end.reset()
        gc_watch = GcWatch()
        gc.callbacks.append(gc_watch)
        stalls: list[float] = []

        async def loop_lag() -> None:
            # how late a 10 ms sleep wakes up: the event loop (or the whole process) was not running
            while True:
                t = time.monotonic()
                await asyncio.sleep(0.01)
                stalls.append(time.monotonic() - t - 0.01)

        lag_task = asyncio.create_task(loop_lag())
        ingest.metrics.write_ms.reset()
        start_written, start_t = ingest.metrics.ticks_written, time.monotonic()
        cpu0 = os.times()
        while time.monotonic() - t0 < args.seconds:
            await asyncio.sleep(0.1)
            pending_max = max(pending_max, ingest.pending)
            if args.source == "ws":
                sampler_depth = max(sampler_depth, ws._queue.qsize())  # diagnostics only: no public counter
            else:
                sampler_depth = max(sampler_depth, ws.queue.qsize())
        end_written, end_t = ingest.metrics.ticks_written, time.monotonic()
        gc.callbacks.remove(gc_watch)
        lag_task.cancel()
        cpu1 = os.times()
        if args.source == "direct":
            offered = await producer
        # drain: let the writer finish what was received
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            q = ws._queue.qsize() if args.source == "ws" else ws.queue.qsize()
            if q == 0 and ingest.pending == 0:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        lat = ingest.metrics.latency
        reader.cancel()
        writer.cancel()
        for t in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if args.source == "ws":
            await ws.aclose()
        else:
            offered = offered or ingest.metrics.ticks_in
        with psycopg.connect(scratch) as conn:
            ticks = conn.execute("SELECT count(*) FROM market.ticks").fetchone()
            prices = conn.execute("SELECT count(*) FROM market.prices_best").fetchone()
            candles = conn.execute("SELECT count(*), sum(n_ticks) FROM market.candles").fetchone()
        assert ticks is not None
        assert prices is not None
        assert candles is not None
        steady = end_t - start_t
        return {
            "load_before": load_before,
            "source": args.source,
            "target_rate": args.rate,
            "seconds": args.seconds,
            "records_per_frame": args.per_frame,
            "symbols": args.symbols,
            "batch_ms": args.batch_ms,
            "ticks_in": ingest.metrics.ticks_in if args.source == "ws" else offered,
            "rows_ticks": int(ticks[0]),
            "rows_prices_best": int(prices[0]),
            "candle_ticks": int(candles[1] or 0),
            "sustained_rate": (end_written - start_written) / steady if steady > 0 else 0.0,
            "p50_ms": lat.percentile(50),
            "p99_ms": lat.percentile(99),
            "e2e_p50_ms": ingest.end_to_end.percentile(50),
            "e2e_p99_ms": ingest.end_to_end.percentile(99),
            "e2e_max_ms": ingest.end_to_end.max_ms,
            "max_ms": lat.max_ms,
            "batches": ingest.metrics.batches,
            "write_p50_ms": ingest.metrics.write_ms.percentile(50),
            "write_p99_ms": ingest.metrics.write_ms.percentile(99),
            "pending_max": pending_max,
            "reader_queue_max": sampler_depth,
            "dropped": ingest.metrics.dropped,
            "gc_longest_ms": gc_watch.longest_ms,
            "gc_count": gc_watch.count,
            "stall_max_ms": max(stalls, default=0.0) * 1000,
            "stalls_over_50ms": sum(1 for x in stalls if x > 0.05),
            "cpu_s_per_s": ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / steady if steady > 0 else 0.0,
        }
    finally:
        await pool.close()
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.wait(), 5)


class GcWatch:
    """The longest garbage-collector pause (they stop everything, the writer included)."""

    def __init__(self) -> None:
        self.longest_ms = 0.0
        self.count = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.longest_ms = max(self.longest_ms, (time.perf_counter() - self._started) * 1000)


def loop_runner(use_uvloop: bool | None) -> Any:
    if use_uvloop is None:
        use_uvloop = runtime.uvloop_wanted()
    if use_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            return uvloop.run
    return asyncio.run


TARGET_RATE, TARGET_P99_MS = 20_000, 100.0


def verdict(r: dict[str, Any]) -> str:
    """The issue's targets: >= 20,000 ticks/s sustained, received -> visible p99 <= 100 ms."""
    p99 = max(r["p99_ms"], r["e2e_p99_ms"])
    ok = r["sustained_rate"] >= TARGET_RATE and p99 <= TARGET_P99_MS and r["dropped"] == 0
    return (f"{'PASS' if ok else 'FAIL'} (target >= {TARGET_RATE:,} ticks/s sustained, p99 <= "
            f"{TARGET_P99_MS:.0f} ms, none dropped; here {r['sustained_rate']:,.0f}/s, p99 {p99:.0f} ms)")


def table(r: dict[str, Any]) -> str:
    path = "socket and adapter included" if r["source"] == "ws" else "the adapter's parsing included"
    rows = [
        ("frame source", f"{r['source']} ({r['records_per_frame']} records/frame, {r['symbols']} symbols)"),
        ("target rate", f"{r['target_rate']:,.0f} ticks/s for {r['seconds']:.0f} s (batch window {r['batch_ms']} ms)"),
        ("sustained rate", f"{r['sustained_rate']:,.0f} ticks/s into market.ticks + prices_best"),
        ("ticks received / rows", f"{r['ticks_in']:,} received, {r['rows_ticks']:,} rows in market.ticks"),
        ("prices_best rows", f"{r['rows_prices_best']:,} (one per symbol, upserted per batch)"),
        ("candles", f"{r['candle_ticks']:,} ticks folded into 1-minute bars"),
        ("latency p50", f"{r['p50_ms']:.0f} ms  (tick in PriceSync's reader -> committed in prices_best)"),
        ("latency p99", f"{r['p99_ms']:.0f} ms"),
        ("frame sent -> visible", f"p50 {r['e2e_p50_ms']:.0f} ms, p99 {r['e2e_p99_ms']:.0f} ms, "
                                  f"max {r['e2e_max_ms']:.0f} ms (1 print in 16; {path})"),
        ("latency max", f"{r['max_ms']:.0f} ms"),
        ("batches", f"{r['batches']:,}; one write transaction p50 {r['write_p50_ms']:.0f} ms, "
                    f"p99 {r['write_p99_ms']:.0f} ms"),
        ("max pending ticks", f"{r['pending_max']:,} (writer side)  /  {r['reader_queue_max']:,} (reader queue)"),
        ("dropped ticks", f"{r['dropped']:,}"),
        ("GC pauses", f"{r['gc_count']:,}, longest {r['gc_longest_ms']:.1f} ms"),
        ("event-loop stalls", f"longest {r['stall_max_ms']:.0f} ms, {r['stalls_over_50ms']} over 50 ms "
                              "(a 10 ms sleep waking late)"),
        ("CPU of this process", f"{r['cpu_s_per_s']:.2f} s per s (frame server and PostgreSQL not included)"),
        ("machine", f"{os.cpu_count()} CPUs, load average {r['load_before']} before the run"),
        ("verdict", verdict(r)),
    ]
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 3 + max(len(v) for _, v in rows))
    out = ["PriceSync ingest benchmark", line]
    out += [f"{k.ljust(width)} | {v}" for k, v in rows]
    out.append(line)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # offered a tenth above the target, so that the sustained figure shows headroom rather than
    # the pacing of the frame server
    parser.add_argument("--rate", type=float, default=22_000.0, help="ticks per second offered")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--per-frame", type=int, default=10, help="records per H0STCNT0 frame")
    parser.add_argument("--symbols", type=int, default=40,
                        help="symbols streaming (one KIS session carries at most 40 next to the notices)")
    parser.add_argument("--batch-ms", type=float, default=25.0)
    parser.add_argument("--source", choices=("ws", "direct"), default="ws")
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--default-gc", action="store_true", help="leave the garbage collector as Python sets it")
    parser.add_argument("--uvloop", action=argparse.BooleanOptionalAction, default=None,
                        help="run on uvloop (default: as PriceSync does, see SM_UVLOOP)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    if args.serve is not None:
        # the frame server plays KIS: as fast as it can be, so it is not what limits the run
        serve_runner: Any = asyncio.run
        with contextlib.suppress(ImportError):
            import uvloop

            serve_runner = uvloop.run
        with contextlib.suppress(KeyboardInterrupt):
            serve_runner(serve_frames(args.serve, args.rate, args.per_frame, args.symbols, args.seconds))
        return 0
    # the same event loop PriceSync runs on (services/pricesync/main.py)
    result = loop_runner(args.uvloop)(run(args))
    print(table(result))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
