"""Benchmark: the KIS simulator's order rate, and the KIS adapter's order round trip and rate limit.

    python bench/kis_bench.py [--a-seconds 10] [--connections 64] [--orders 1000] [--c-seconds 15]

(a) Simulator capacity.  The simulator runs as its own process (both ways it can be started:
    ``python -m stock_manager run kis-sim`` on the default asyncio loop, as ``stock-manager up``
    and the tests start it, and ``python -m stock_manager.services.kis_sim`` on uvloop), its rate limit is
    switched off through ``POST /sim/faults`` and a load process drives it with many keep-alive
    connections over raw sockets (a few lines of HTTP/1.1, so the client is not what limits the
    run), each placing limit buys that rest in the book, for ``--a-seconds``.  Orders are spread
    over several accounts (app keys) and cheap symbols so that cash never runs out.  The third
    entry, ``durable``, is the first with ``--data-dir``: the price of journaling every order
    before its answer (services/kis_sim/persist.py), as ``stock-manager up`` runs it.
(b) Adapter round trip.  ``KisRestClient.order_cash`` against the simulator with its limit off
    (``UnlimitedRateLimiter``, in-memory token store): ``--orders`` orders one after another, then
    the same number from 8 concurrent callers.  The same orders over one raw socket are the floor.
(c) The real limit.  The simulator enforces KIS's 20 requests/s per app key; clients take their
    slots from ``PgRateLimiter(limit=20)`` on a scratch PostgreSQL database and call inquire-price
    for ``--c-seconds`` after a warm-up second, EGW00201 not retried so every one is counted: one
    process with 8 callers, then three processes (as PriceSync, Strategy and Execution share one
    key) with 4 callers each.  The limiter's granted slots (database clock) show its schedule.

Prints a table.  Not a test: the numbers depend on the machine, which the table names.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from loguru import logger  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from stock_manager.shared.clock import ScaledClock  # noqa: E402
from stock_manager.shared.db.migrate import migrate  # noqa: E402
from stock_manager.shared.db.pool import open_pool  # noqa: E402
from stock_manager.shared.kis.endpoints import KisEnv  # noqa: E402
from stock_manager.shared.kis.errors import KisError, RateLimited  # noqa: E402
from stock_manager.shared.kis.models import Side  # noqa: E402
from stock_manager.shared.kis.pg_ports import PgRateLimiter, PgTokenStore, UnlimitedRateLimiter  # noqa: E402
from stock_manager.shared.kis.ports import InMemoryTokenStore, Priority  # noqa: E402
from stock_manager.shared.kis.rest import KisCredentials, KisRestClient, KisRestSettings, RetryPolicy  # noqa: E402

MONDAY_10AM = "2026-11-23T10:00:00+09:00"  # the session is open
ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"
QUOTE_SYMBOL = "005930"


# --- the simulator process ------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sim:
    """The simulator as a child process on a loopback port."""

    def __init__(self, entry: str) -> None:
        self.entry = entry
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "SM_", "DATABASE_URL"))}
        self.data_dir: tempfile.TemporaryDirectory[str] | None = None
        if entry == "cli":
            cmd = [sys.executable, "-m", "stock_manager", "run", "kis-sim", "--port", str(self.port)]
        elif entry == "durable":
            self.data_dir = tempfile.TemporaryDirectory(prefix="kis-sim-bench-")
            cmd = [sys.executable, "-m", "stock_manager", "run", "kis-sim", "--port", str(self.port),
                   "--data-dir", self.data_dir.name]
        else:
            cmd = [sys.executable, "-m", "stock_manager.services.kis_sim", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.http = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.http.get("/sim/clock").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("simulator did not start")
            time.sleep(0.1)

    def post(self, path: str, body: Any = None) -> Any:
        r = self.http.post(path, json=body)
        r.raise_for_status()
        return r.json()

    def fresh(self, rate_limit: float) -> None:
        """No orders, the session open, the given per-app-key limit (0 = off)."""
        self.post("/sim/reset")
        self.post("/sim/clock", {"at": MONDAY_10AM, "speed": 1})
        self.post("/sim/faults", {"rate_limit_per_s": rate_limit})

    def token(self, app_key: str, app_secret: str) -> str:
        body = {"grant_type": "client_credentials", "appkey": app_key, "appsecret": app_secret}
        return str(self.post("/oauth2/tokenP", body)["access_token"])

    def clock(self) -> ScaledClock:
        now = self.http.get("/sim/clock").json()
        return ScaledClock(datetime.fromisoformat(now["now"]), float(now["speed"]))

    def cheap_symbols(self, n: int) -> list[tuple[str, int]]:
        """Liquid, cheap, tradable symbols with a price that rests far below the market."""
        listed = self.http.get("/sim/symbols").json()["symbols"]
        picks = sorted(
            (s for s in listed if s["tier"] <= 1 and not s["halted"] and 1_000 <= s["base_price"] < 2_000),
            key=lambda s: s["symbol"],
        )[:n]
        # within the daily limits (±30%) but well under the market: tick 1 below 2,000
        return [(s["symbol"], int(s["base_price"] * 0.75)) for s in picks]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.http.close()
        if self.data_dir is not None:
            self.data_dir.cleanup()


def new_credentials() -> KisCredentials:
    app_key = "PS" + uuid.uuid4().hex + uuid.uuid4().hex[:2]  # 36 characters, like a KIS app key
    return KisCredentials.of(app_key, (uuid.uuid4().hex * 6)[:180], f"{uuid.uuid4().int % 10**8:08d}-01")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# --- (a) raw keep-alive load ----------------------------------------------------------------------


@dataclass
class RawOrder:
    """A ready-to-send order-cash request for one account."""

    request: bytes


def raw_order(port: int, token: str, creds: KisCredentials, symbol: str, price: int) -> RawOrder:
    body = json.dumps(
        {"CANO": creds.cano, "ACNT_PRDT_CD": creds.acnt_prdt_cd, "PDNO": symbol, "ORD_DVSN": "00",
         "ORD_QTY": "1", "ORD_UNPR": str(price)},
        separators=(",", ":"),
    ).encode()
    head = (
        f"POST {ORDER_PATH} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json; charset=utf-8\r\n"
        f"authorization: Bearer {token}\r\nappkey: {creds.app_key.get_secret_value()}\r\n"
        f"appsecret: {creds.app_secret.get_secret_value()}\r\ntr_id: TTTC0012U\r\ntr_cont: \r\ncusttype: P\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    return RawOrder(head + body)


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bool:
    """One request/response on a keep-alive connection; True when KIS-style rt_cd is "0"."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length)
    return head.startswith(b"HTTP/1.1 200") and b'"rt_cd":"0"' in body


@dataclass
class LoadResult:
    ok: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    per_second: list[int] = field(default_factory=list)  # accepted orders in each measured second


async def raw_load(port: int, orders: list[RawOrder], connections: int, warmup: float, seconds: float) -> LoadResult:
    """``connections`` keep-alive sockets, each sending its next order as soon as the last is answered."""
    result = LoadResult(per_second=[0] * max(1, int(seconds + 0.999)))
    start = time.monotonic() + warmup
    end = start + seconds

    async def one(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = orders[i % len(orders)].request
        try:
            while True:
                sent = time.monotonic()
                if sent >= end:
                    return
                ok = await exchange(reader, writer, request)
                done = time.monotonic()
                if sent >= start:
                    if ok:
                        result.ok += 1
                        result.per_second[min(int(done - start), len(result.per_second) - 1)] += 1
                    else:
                        result.failed += 1
                    if len(result.latencies_ms) < 200_000:
                        result.latencies_ms.append((done - sent) * 1000)
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(connections)))
    return result


def loader_main() -> None:
    """``--loader``: the load process of (a); settings on stdin, one JSON line out."""
    cfg = json.loads(sys.stdin.readline())
    orders = [RawOrder(bytes.fromhex(x)) for x in cfg["orders"]]
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    r: LoadResult = runner(raw_load(cfg["port"], orders, cfg["connections"], cfg["warmup"], cfg["seconds"]))
    print(json.dumps({"ok": r.ok, "failed": r.failed, "lat": r.latencies_ms, "per_second": r.per_second}))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sim_capacity(entry: str, args: argparse.Namespace) -> dict[str, Any]:
    sim = Sim(entry)
    try:
        sim.fresh(rate_limit=0)
        symbols = sim.cheap_symbols(8)
        orders = []
        for i in range(args.accounts):
            creds = new_credentials()
            token = sim.token(creds.app_key.get_secret_value(), creds.app_secret.get_secret_value())
            symbol, price = symbols[i % len(symbols)]
            orders.append(raw_order(sim.port, token, creds, symbol, price))
        per_loader = max(1, args.connections // args.loaders)
        cfg = {"port": sim.port, "connections": per_loader, "warmup": 1.0, "seconds": args.a_seconds,
               "orders": [o.request.hex() for o in orders]}
        loaders = [
            subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--loader"], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(args.loaders)
        ]
        outs = []
        for p in loaders:
            assert p.stdin is not None
            p.stdin.write(json.dumps(cfg) + "\n")
            p.stdin.flush()
        time.sleep(1.0)  # the loaders' warm-up second
        cpu0, load0, wall0 = cpu_seconds(sim.proc.pid), sum(cpu_seconds(p.pid) for p in loaders), time.monotonic()
        time.sleep(args.a_seconds)
        cpu1, load1, wall1 = cpu_seconds(sim.proc.pid), sum(cpu_seconds(p.pid) for p in loaders), time.monotonic()
        for p in loaders:
            out, _ = p.communicate(timeout=args.a_seconds + 60)
            outs.append(json.loads(out.strip().splitlines()[-1]))
        ok = sum(o["ok"] for o in outs)
        failed = sum(o["failed"] for o in outs)
        lat = [x for o in outs for x in o["lat"]]
        per_second = [sum(col) for col in zip(*(o["per_second"] for o in outs), strict=True)]
        at_broker = len(sim.http.get("/sim/orders").json())
        return {
            "entry": entry,
            "connections": per_loader * args.loaders,
            "accepted_per_s": ok / args.a_seconds,
            "failed": failed,
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "at_broker": at_broker,
            "min_s": min(per_second),
            "max_s": max(per_second),
            "sim_cpu": (cpu1 - cpu0) / (wall1 - wall0),
            "load_cpu": (load1 - load0) / (wall1 - wall0),
        }
    finally:
        sim.stop()


# --- (b) adapter round trip -----------------------------------------------------------------------


async def adapter_round_trip(sim: Sim, n: int, concurrency: int) -> dict[str, Any]:
    sim.fresh(rate_limit=0)
    symbols = sim.cheap_symbols(8)
    creds = new_credentials()
    settings = KisRestSettings(env=KisEnv.REAL, base_url=sim.url)
    rest = KisRestClient(settings, creds, InMemoryTokenStore(), UnlimitedRateLimiter(), clock=sim.clock())
    latencies: list[float] = []
    try:
        await rest.access_token()
        for i in range(20):  # warm the connection pool and the symbols
            symbol, price = symbols[i % len(symbols)]
            await rest.order_cash(Side.BUY, symbol, 1, "00", price)
        queue = list(range(n))

        async def caller() -> None:
            while queue:
                i = queue.pop()
                symbol, price = symbols[i % len(symbols)]
                t0 = time.perf_counter()
                await rest.order_cash(Side.BUY, symbol, 1, "00", price)
                latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await rest.aclose()
    return {
        "concurrency": concurrency,
        "orders": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
    }


async def raw_round_trip(sim: Sim, n: int) -> dict[str, Any]:
    """The floor: the same order over one raw keep-alive socket, one at a time."""
    sim.fresh(rate_limit=0)
    symbol, price = sim.cheap_symbols(1)[0]
    creds = new_credentials()
    order = raw_order(sim.port, sim.token(creds.app_key.get_secret_value(), creds.app_secret.get_secret_value()),
                      creds, symbol, price)
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    latencies: list[float] = []
    try:
        for i in range(n + 20):
            t0 = time.perf_counter()
            assert await exchange(reader, writer, order.request)
            if i >= 20:
                latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        writer.close()
    return {"orders": n, "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "per_s": 1000 / statistics.fmean(latencies)}


# --- (c) the real limit through PgRateLimiter ---------------------------------------------------------


class SlotLog:
    """The limiter the client uses, noting the database-clock slot of every grant."""

    def __init__(self, inner: PgRateLimiter) -> None:
        self.inner = inner
        self.slots: list[float] = []

    async def acquire(self, priority: Priority) -> None:
        await self.inner.acquire(priority)
        self.slots.append(self.inner.last_slot)


async def hammer(cfg: dict[str, Any]) -> dict[str, Any]:
    """inquire-price as fast as PgRateLimiter allows, EGW00201 not retried (each one counted)."""
    creds = KisCredentials.of(cfg["app_key"], cfg["app_secret"], cfg["account"])
    clock = ScaledClock(datetime.fromisoformat(cfg["now"]), 1.0)
    size = cfg["tasks"] + 2
    pool = await open_pool(cfg["db"], min_size=size, max_size=size)
    ok: list[float] = []
    limited = 0
    errors = 0
    try:
        limiter = SlotLog(PgRateLimiter(pool, creds.key_id(KisEnv.REAL), cfg["limit"]))
        settings = KisRestSettings(env=KisEnv.REAL, base_url=cfg["sim"], retry=RetryPolicy(rate_limited=()))
        store = PgTokenStore(pool, cfg["db"], creds.app_secret)
        async with KisRestClient(settings, creds, store, limiter, clock=clock) as rest:
            await rest.access_token()
            await asyncio.sleep(max(0.0, cfg["start_at"] - time.time()))
            end = cfg["start_at"] + cfg["warmup"] + cfg["seconds"]  # wall clock, the same for every process

            async def loop() -> None:
                nonlocal limited, errors
                while time.time() < end:
                    try:
                        await rest.inquire_price(QUOTE_SYMBOL, priority=Priority.ORDER)
                    except RateLimited:
                        limited += 1
                    except KisError:
                        errors += 1
                    else:
                        ok.append(time.time())

            await asyncio.gather(*(loop() for _ in range(cfg["tasks"])))
    finally:
        await pool.close()
    return {"ok": ok, "limited": limited, "errors": errors, "slots": limiter.slots}


def hammer_main() -> None:
    """``--hammer``: one process of (c); settings on stdin, one JSON line out."""
    cfg = json.loads(sys.stdin.readline())
    print(json.dumps(asyncio.run(hammer(cfg))))


def max_in_window(stamps: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while t - stamps[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


def rate_limited_run(sim: Sim, dsn: str, procs: int, tasks: int, seconds: float) -> dict[str, Any]:
    sim.fresh(rate_limit=20)
    creds = new_credentials()
    server = conninfo_to_dict(dsn)
    name = f"sm_bench_{uuid.uuid4().hex[:8]}"
    admin = make_conninfo("", **server)
    warmup = 1.0
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        asyncio.run(migrate(make_conninfo("", **{**server, "dbname": name})))
        roles = ("execution", "strategy", "pricesync")
        start_at = time.time() + 3.0 + procs  # after every process has its pool and token
        children = []
        for i in range(procs):
            cfg = {
                "db": make_conninfo("", **{**server, "dbname": name, "user": f"sm_{roles[i % len(roles)]}"}),
                "sim": sim.url, "app_key": creds.app_key.get_secret_value(),
                "app_secret": creds.app_secret.get_secret_value(), "account": f"{creds.cano}-{creds.acnt_prdt_cd}",
                "now": sim.http.get("/sim/clock").json()["now"], "limit": 20, "tasks": tasks, "seconds": seconds,
                "warmup": warmup, "start_at": start_at,
            }
            p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--hammer"], cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert p.stdin is not None
            p.stdin.write(json.dumps(cfg) + "\n")
            p.stdin.flush()
            children.append(p)
        outs = []
        for p in children:
            out, _ = p.communicate(timeout=seconds + 60)
            if p.returncode != 0:
                raise RuntimeError(f"hammer process failed ({p.returncode})")
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    lo, hi = start_at + warmup, start_at + warmup + seconds
    stamps = sorted(t for o in outs for t in o["ok"] if lo <= t < hi)
    slots = sorted(t for o in outs for t in o["slots"] if lo <= t < hi)
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    return {
        "procs": procs,
        "tasks": tasks,
        "per_s": len(stamps) / seconds,
        "limited": sum(o["limited"] for o in outs),
        "errors": sum(o["errors"] for o in outs),
        "max_1s": max_in_window(stamps, 1.0),
        "share": [sum(1 for t in o["ok"] if lo <= t < hi) for o in outs],
        "gap_ms": statistics.fmean(gaps) * 1000 if gaps else float("nan"),
    }


# --- report ---------------------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"nproc {os.cpu_count()}, {model}, Python {platform.python_version()}, {platform.system()}"


def table(rows: list[tuple[str, str]], title: str) -> str:
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 3 + max(len(v) for _, v in rows))
    out = [title, line]
    for k, v in rows:
        out.append(line if k == "-" else f"{k.ljust(width)} | {v}")
    out.append(line)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--a-seconds", type=float, default=10.0, help="(a) measured seconds per simulator entry")
    parser.add_argument("--connections", type=int, default=64, help="(a) keep-alive connections in all")
    parser.add_argument("--loaders", type=int, default=1, help="(a) load processes sharing the connections")
    parser.add_argument("--accounts", type=int, default=16, help="(a) app keys/accounts the orders are spread over")
    parser.add_argument("--orders", type=int, default=1000, help="(b) orders per run")
    parser.add_argument("--c-seconds", type=float, default=15.0)
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--entries", default="cli,module,durable",
                        help="(a) which simulator entry points to measure (durable: cli with a data directory)")
    parser.add_argument("--loader", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hammer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    if args.loader:
        loader_main()
        return 0
    if args.hammer:
        hammer_main()
        return 0

    rows: list[tuple[str, str]] = [("machine", machine()), ("-", "")]
    entry_name = {
        "cli": "python -m stock_manager run kis-sim (asyncio)",
        "module": "python -m stock_manager.services.kis_sim (uvloop)",
        "durable": "run kis-sim --data-dir: every order journaled before its answer (asyncio)",
    }
    for entry in [e for e in args.entries.split(",") if e]:
        a = sim_capacity(entry, args)
        rows.append((f"(a) sim orders/s, {entry}", f"{a['accepted_per_s']:,.0f} accepted/s  [{entry_name[entry]}]"))
        rows.append(("    per second; CPU", f"{a['min_s']:,} to {a['max_s']:,} orders in a second; CPU s per s: "
                     f"simulator {a['sim_cpu']:.2f} (single-threaded: 1.00 is its ceiling), "
                     f"load process {a['load_cpu']:.2f}"))
        rows.append(("    latency under load", f"p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms; "
                     f"{a['connections']} keep-alive connections, {args.a_seconds:.0f} s, "
                     f"{a['failed']} refused, {a['at_broker']:,} orders at the broker"))
    rows.append(("-", ""))

    sim = Sim("cli")
    try:
        raw = asyncio.run(raw_round_trip(sim, args.orders))
        seq = asyncio.run(adapter_round_trip(sim, args.orders, 1))
        par = asyncio.run(adapter_round_trip(sim, args.orders, 8))
        rows.append(("(b) raw socket, sequential", f"p50 {raw['p50_ms']:.2f} ms, p99 {raw['p99_ms']:.2f} ms "
                     f"({raw['orders']} orders, {raw['per_s']:,.0f}/s) - the simulator's floor"))
        for r in (seq, par):
            label = "sequential" if r["concurrency"] == 1 else f"{r['concurrency']} concurrent"
            rows.append((f"(b) adapter order_cash, {label}",
                         f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms "
                         f"({r['orders']} orders, {r['per_s']:,.0f}/s)"))
        rows.append(("-", ""))
        for procs, tasks in ((1, 8), (3, 4)):
            c = rate_limited_run(sim, args.dsn, procs, tasks, args.c_seconds)
            rows.append((f"(c) 20/s limit, {procs} proc x {tasks} callers",
                         f"{c['per_s']:.2f} requests/s ({c['per_s'] / 20:.0%} of 20/s) over {args.c_seconds:.0f} s, "
                         f"{c['limited']} EGW00201, {c['errors']} other errors"))
            rows.append(("    schedule", f"slots {c['gap_ms']:.1f} ms apart on average (interval 51.5 ms); "
                         f"max {c['max_1s']} answers in any 1 s; per process {c['share']}"))
    finally:
        sim.stop()
    print(table(rows, "KIS simulator and adapter benchmark"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
