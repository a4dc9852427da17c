"""The whole stack under faults, then every invariant checked against the simulator's ground truth.

``python -m stock_manager.soak --minutes 45 --speed 60 --kill-every 20`` runs, on a fresh database
(created on the server of ``DATABASE_URL``, or on the local PostgreSQL), the simulator and the three
services as separate processes under the real supervisor, with simulator faults on (5xx, EGW00201,
timeouts, lost responses, dropped WebSockets, duplicated notices), and SIGKILLs each service in turn
(the supervisor restarts it).  The market runs from ``--start`` for ``--minutes`` of market time
(a session that reaches 15:30 KST includes the forced liquidation).  At the end it switches the
faults off, lets every service settle, and prints the invariants.

``--day`` runs a whole trading day instead (issue #11): from the open at 09:00 through the close,
and on through the post-close sessions until the account is flat (18:05 at the latest), with
the day's events a real one has.  At 12:00 the whole stack stops as ``stock-manager up`` does on
Ctrl-C (the simulator too: it keeps its state in a data directory under the log directory) and
starts again; the day must resume with the broker and the database in agreement.  At 15:19:30 a
person buys a thin symbol by hand (``POST /sim/manual-order``, as at HTS): Execution must mark it
MANUAL, positions must count it, and the close must sell it; bought after the last moment a sell
may still be placed before the closing auction, it is held at 15:20 and must be sold after the
uncross (ORD_DVSN 06, then 07), on holdings the broker has confirmed.  ``--market-seed 1,2,3`` runs one
day per seed of the simulator's market, each on its own database.

The invariants:

- every broker order is an intent's (exactly one; no intent has two), or a recorded MANUAL order,
  and only orders placed by hand are MANUAL;
- every intent is final; nothing is left in doubt;
- each order's fills sum to the broker's filled quantity and amount;
- positions in the database equal the simulator's balance;
- no symbol was ever held by two workers;
- after the close: flat at the broker, in ``position_state`` and in the ledger of fills; no lock
  remains; Execution's latest position check says AGREE and none ever said DRIFT; trading was
  never halted for position drift;
- in a fault-free run, Execution never refused a sell for want of shares;
- the daily summary's realized PnL equals what the simulator's fills imply.

It exits 1 and says which invariant broke.  A short version runs in CI (tests/e2e/test_soak.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any, LiteralString

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from stock_manager.shared import platform
from stock_manager.shared.calendar import DayKind, xkrx_calendar
from stock_manager.shared.clock import KST, kst
from stock_manager.shared.db.migrate import migrate
from stock_manager.shared.market_rules import POST_CLOSE_START, Market, price_limits
from stock_manager.shared.resources import package_path
from stock_manager.shared.sql import load_queries
from stock_manager.shared.trade_states import ORDER_AWAITING_BROKER, STATUS_SETS
from stock_manager.supervisor import ChildSpec, Supervisor

Q = load_queries(package_path(__package__, "sql", "soak.sql"))
SERVICES = ("pricesync", "strategy", "execution")
LOCK_TTL_S = 8
FAULTS = {"http_500_rate": 0.02, "egw00201_rate": 0.02, "timeout_rate": 0.01, "lost_response_rate": 0.02,
          "ws_drop_every_s": 40, "duplicate_notice_rate": 0.05}
NO_FAULTS = {"http_500_rate": 0, "egw00201_rate": 0, "timeout_rate": 0, "lost_response_rate": 0,
             "ws_drop_every_s": None, "duplicate_notice_rate": 0}
# Parameters that let a short accelerated session trade: short indicators, low filters.
SOAK_PARAMS = {"sma_short": 2, "sma_long": 4, "breakout_bars": 3, "lookback_min": 30, "min_volume": 1000,
               "min_turnover": 10_000_000, "max_price_age_s": 600, "entry_start": "09:00:00",
               "entry_end": "15:10:00", "capital_per_trade": 1_000_000, "stop_loss_pct": 1.0,
               "take_profit_pct": 1.5, "trailing_activate_pct": 1.0, "trailing_stop_pct": 0.8,
               "trend_min_hold_s": 60, "max_hold_min": 10, "reentry_cooldown_min": 3}

# The whole day: the open, the stack's restart at noon, a manual buy, and the end: once flat after
# the close, at 18:05 at the latest (the after-hours session ends at 18:00, and whatever the close
# left may be sold until then).  The manual buy comes after the last entry (15:10), inside the
# forced liquidation's window (from 15:15, where no worker's exit rule sells it) and past the last
# moment a sell may still be placed before the closing auction (15:19:30): so a thin symbol is held
# at 15:20 and the close must sell it after the uncross.
DAY_START = "09:00"
DAY_END = dtime(18, 5)
DAY_RESTART = dtime(12, 0)
DAY_MANUAL = dtime(15, 19, 30)  # past the last moment to place a sell before the auction
# By then the closing uncross is over (KRX ends the closing call at a random moment up to 30 s
# after 15:30): from here on a flat account stays flat.
CLOSE_SETTLED = dtime(15, 31)
# How long the book must hold still before the invariants read it: a reconcile pass and a book
# round (Execution reconciles every 3 s in the soak) fit in it.
SETTLED_FOR_S = 5.0
# A manual buy worth less than one level of the thinnest book (TIER_LEVEL_VALUE in
# services/kis_sim/universe.py), so it fills at once and only the close's sale has to find buyers.
MANUAL_ORDER_WON = 300_000
MANUAL_PRICE_RANGE = (2_000, 60_000)
# A restored clock may be behind where it stopped by what the simulator had not yet recorded (its
# sweep, 1 s of wall time), and ahead by what ran in wall time since the stop began; beyond that it
# did not resume, it started afresh.
CLOCK_BEHIND_WALL_S = 2.0


@dataclass
class Result:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, ok, detail))

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    def render(self) -> str:
        lines = ["soak invariants", "---------------"]
        lines += [f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else "")
                  for name, ok, detail in self.checks]
        lines.append("")
        lines += [f"{k}: {v}" for k, v in self.stats.items()]
        return "\n".join(lines)


@dataclass
class ManualOrder:
    """The order a person placed by hand, as the simulator acknowledged it (or refused it)."""

    symbol: str
    qty: int
    tier: int
    at: datetime
    odno: str | None = None
    error: str | None = None


@dataclass
class Restart:
    """What the midday restart of the whole stack saw."""

    stopped_at: datetime
    exit_codes: dict[str, int | None]
    resumed_at: datetime | None = None
    clock_set_back: bool = False
    reported: str = ""  # the simulator's clock as it came back, before anything touched it
    orders_before: int = 0
    orders_after: int = 0
    stop_s: float = 0.0
    wall_s: float = 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_db(url: str, dbname: str) -> str:
    params = {k: v for k, v in conninfo_to_dict(url).items() if v not in ("", None)}
    params["dbname"] = dbname
    return make_conninfo("", **params)


class Soak:
    def __init__(self, admin_url: str, *, start: datetime, minutes: float, speed: float, kill_every_s: float,
                 faults: bool, workers: int, seed: int, log_dir: Path, market_seed: int | None = None,
                 restart_at: dtime | None = None, manual_at: dtime | None = None,
                 strategy: str | None = None, strategy_version: str = "breakout-v1",
                 params: dict[str, Any] | None = SOAK_PARAMS, sim_args: Sequence[str] = (),
                 db_prefix: str = "sm_soak") -> None:
        self.server_url = admin_url
        # the day's strategy parameters (None: the strategy's defaults, which Strategy seeds itself)
        self.params = params
        # more of the simulator's command line (``--replay FILE``: stock_manager/replay.py)
        self.sim_args = list(sim_args)
        # SM_STRATEGY (a user's strategy by path or module, docs/strategies.md) and the name-version
        # the day's parameters are seeded for; unknown parameters are ignored by any strategy
        self.strategy = strategy
        self.strategy_version = strategy_version
        self.dbname = f"{db_prefix}_{uuid.uuid4().hex[:8]}"
        self.url = _with_db(admin_url, self.dbname)
        self.start = start
        self.minutes = minutes
        self.speed = speed
        self.kill_every_s = kill_every_s
        self.faults = faults
        self.workers = workers
        self.rng = random.Random(seed)
        self.log_dir = log_dir
        self.market_seed = market_seed
        self.restart_at = restart_at
        self.manual_at = manual_at
        self.port = _free_port()
        self.sim_url = f"http://127.0.0.1:{self.port}"
        self.account = f"{uuid.uuid4().int % 10**8:08d}-01"
        self.app_key = "PS" + uuid.uuid4().hex + "soak"
        self.http = self._client()
        self.kills: dict[str, int] = defaultdict(int)
        self.restarts: dict[str, int] = defaultdict(int)
        self.double_holds: list[str] = []
        self.restart: Restart | None = None
        self.manual: ManualOrder | None = None
        self.sup: Supervisor | None = None
        self.runner: asyncio.Task[None] | None = None

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    @property
    def reaches_close(self) -> bool:
        return kst(self.end).time() >= CLOSE_SETTLED

    @property
    def sells_after_close(self) -> bool:
        """The session runs into the post-close sessions, where what the close left may still be sold;
        it then ends as soon as the account is flat and the day closed."""
        return kst(self.end).time() >= POST_CLOSE_START

    @property
    def data_dir(self) -> Path:
        """Where the simulator keeps its state across the restart: the soak's, so under its logs."""
        return self.log_dir / "kis-sim-data"

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.sim_url, timeout=10)

    # --- set-up and tear-down -------------------------------------------------------------------

    async def create_db(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.server_url, autocommit=True) as conn:
            await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))
        await migrate(self.url)

    async def drop_db(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.server_url, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.dbname)))

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.url, "SM_MODE": "sim", "KIS_REST_URL": self.sim_url,
            "KIS_WS_URL": f"ws://127.0.0.1:{self.port}", "KIS_APP_KEY": self.app_key, "KIS_ACCOUNT": self.account,
            "SM_HEARTBEAT_S": "1", "KIS_ORDER_TIMEOUT_S": "3", "KIS_READ_TIMEOUT_S": "5",
            "SM_EXEC_RECONCILE_S": "3", "SM_EXEC_RECONCILE_FAST_S": "2", "SM_EXEC_STALE_PENDING_S": "5",
            "SM_EXEC_SEND_DEADLINE_S": "3",
            "SM_EXEC_OWNER_DEAD_AFTER_S": "4", "SM_EXEC_IN_DOUBT_GRACE_S": "2", "SM_EXEC_LEASE_TTL_S": "5",
            "SM_EXEC_MISSING_FILL_GRACE_S": "4", "SM_STRATEGY_WORKERS": str(self.workers),
            # a dead worker is reaped (EXIT) before its lock can expire and be taken over
            "SM_STRATEGY_LOCK_TTL_S": str(LOCK_TTL_S), "SM_STRATEGY_WORKER_TTL_S": "5",
            "SM_STRATEGY_HEARTBEAT_S": "1",
            "SM_STRATEGY_INTENT_TIMEOUT_S": "20", "PYTHONUNBUFFERED": "1",
            **({"SM_STRATEGY": self.strategy} if self.strategy else {}),
        }

    def specs(self) -> list[ChildSpec]:
        exe = [sys.executable, "-m", "stock_manager", "run"]
        env = self.env()
        sim_argv = [*exe, "kis-sim", "--port", str(self.port)]
        if self.market_seed is not None:
            sim_argv += ["--seed", str(self.market_seed)]
        if self.restart_at is not None:
            sim_argv += ["--data-dir", str(self.data_dir.resolve())]
        sim_argv += self.sim_args
        sim = ChildSpec("kis-sim", sim_argv, env, ready=lambda: _port_open(self.port))
        return [sim, *(ChildSpec(s, [*exe, s], {**env, "SM_INSTANCE_ID": f"soak-{s}"}) for s in SERVICES)]

    async def seed(self) -> None:
        """The symbol master and today's parameters; the clock where the session should start."""
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            async with conn.cursor() as cur:
                for s in await self._symbols():
                    market = Market(s["market"])
                    lo, hi = price_limits(int(s["base_price"]), market)
                    await cur.execute(Q["insert_symbol"], {
                        "symbol": s["symbol"], "name": s["name"], "market": s["market"],
                        "base_price": s["base_price"], "upper_limit": hi, "lower_limit": lo,
                        "prev_high": s.get("prev_high"), "prev_low": s.get("prev_low"), "halted": s["halted"]})
            if self.params is None:
                return
            await conn.execute(Q["insert_params"], {"effective_date": self.start.date() - timedelta(days=1),
                                                    "strategy_version": self.strategy_version,
                                                    "params": Jsonb(self.params)})

    async def _symbols(self) -> list[dict[str, Any]]:
        body = (await self.http.get("/sim/symbols")).json()
        rows: list[dict[str, Any]] = body["symbols"] if isinstance(body, dict) else body
        return rows

    # --- the run ----------------------------------------------------------------------------------

    async def run(self) -> Result:
        await self.create_db()
        shutil.rmtree(self.data_dir, ignore_errors=True)  # a day starts with a broker that knows nothing
        try:
            # the simulator first, alone, to set its clock and seed the symbols before anyone trades
            sup = await self._start_simulator()
            await self.http.post("/sim/clock", json={"at": self.start.isoformat(), "speed": 1})
            await self.seed()
            if self.faults:
                await self.http.post("/sim/faults", json=FAULTS)
            await self.http.post("/sim/clock", json={"speed": self.speed})
            self.runner = asyncio.create_task(sup.run())
            await self._session()
            await self.http.post("/sim/faults", json=NO_FAULTS)
            await self._settle()
            result = await self.check()
            result.stats["kills"] = dict(self.kills)
            result.stats["restarts"] = dict(self._restart_counts())
            return result
        finally:
            await self._stop_stack()
            await self.http.aclose()

    async def _start_simulator(self) -> Supervisor:
        self.sup = sup = Supervisor(self.specs(), log_dir=self.log_dir, min_backoff_s=0.5, max_backoff_s=2)
        await sup.start_all_of(1)
        return sup

    async def _stop_stack(self) -> dict[str, int | None]:
        """Stop every child as ``up`` does on Ctrl-C (stdin closed, in reverse start order); their exit codes."""
        sup, runner = self.sup, self.runner
        if sup is None:
            return {}
        sup.request_stop()
        if runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runner, 90)
        else:
            await sup.stop_all()
        for c in sup.children:
            self.restarts[c.spec.name] += c.restarts
        self.sup = self.runner = None
        return {c.spec.name: c.proc.returncode if c.proc is not None else None for c in sup.children}

    def _restart_counts(self) -> dict[str, int]:
        counts = dict(self.restarts)
        for c in self.sup.children if self.sup is not None else []:
            counts[c.spec.name] = counts.get(c.spec.name, 0) + c.restarts
        return counts

    async def _session(self) -> None:
        next_kill = time.monotonic() + self.kill_every_s
        victims = list(SERVICES)
        while True:
            now = await self._sim_now()
            if now >= self.end or (self.sells_after_close and kst(now).time() >= CLOSE_SETTLED
                                   and await self._day_done(now)):
                return
            local = kst(now).time()
            if self.restart_at is not None and self.restart is None and local >= self.restart_at:
                await self._restart_stack(now)
                next_kill = time.monotonic() + self.kill_every_s
                continue
            if self.manual_at is not None and self.manual is None and local >= self.manual_at:
                await self._place_manual_order(now)
            await self._watch_locks()
            if self.kill_every_s > 0 and time.monotonic() >= next_kill and self.sup is not None:
                name = victims[sum(self.kills.values()) % len(victims)]
                child = next(c for c in self.sup.children if c.spec.name == name)
                if child.pid:
                    platform.kill_hard(child.pid)
                    self.kills[name] += 1
                next_kill = time.monotonic() + self.kill_every_s * self.rng.uniform(0.6, 1.4)
            await asyncio.sleep(0.5)

    async def _restart_stack(self, now: datetime) -> None:
        """Stop everything, the simulator included, and start it all again, as a user restarting
        ``stock-manager up`` would.  The simulator resumes from its data directory, its clock where
        it stopped; if the clock does not resume, the soak sets it back and says so (the day must go
        on from where it was, or the check after the close compares two different days)."""
        orders_before = len(await self._broker("/sim/orders"))
        stopped_at = await self._sim_now()
        t0 = time.monotonic()
        exit_codes = await self._stop_stack()
        await self.http.aclose()
        self.http = self._client()
        self.restart = info = Restart(stopped_at=stopped_at, exit_codes=exit_codes, orders_before=orders_before)
        info.stop_s = round(time.monotonic() - t0, 1)
        sup = await self._start_simulator()
        clock = (await self.http.get("/sim/clock")).json()
        resumed = datetime.fromisoformat(clock["now"])
        ahead_s = (resumed - stopped_at).total_seconds()
        # the simulator stops last, so its clock ran on while the services stopped; and again since
        # it came back: what ran in wall time since the stop began bounds how far ahead it may be
        ran_s = (time.monotonic() - t0) * self.speed
        info.reported = f"{kst(resumed):%Y-%m-%d %H:%M:%S} x{clock['speed']:g}"
        if not -CLOCK_BEHIND_WALL_S * self.speed <= ahead_s <= ran_s + self.speed or clock["speed"] != self.speed:
            info.clock_set_back = True
            await self.http.post("/sim/clock", json={"at": stopped_at.isoformat(), "speed": self.speed})
            resumed = stopped_at
        info.resumed_at = resumed
        info.orders_after = len(await self._broker("/sim/orders"))
        if self.faults:
            await self.http.post("/sim/faults", json=FAULTS)  # a restarted gateway starts without them
        self.runner = asyncio.create_task(sup.run())
        info.wall_s = round(time.monotonic() - t0, 1)

    async def _place_manual_order(self, now: datetime) -> None:
        """A person buys a thin symbol by hand (HTS), one nobody here has traded today."""
        traded = {f["symbol"] for f in await self._broker("/sim/fills")}
        lo, hi = MANUAL_PRICE_RANGE
        candidates = [s for s in await self._symbols()
                      if not s["halted"] and s["symbol"] not in traded and lo <= int(s["base_price"]) <= hi]
        thinnest = max(int(s.get("tier", 0)) for s in candidates)  # tier 0 trades the most
        pick = self.rng.choice(sorted((s for s in candidates if int(s.get("tier", 0)) == thinnest),
                                      key=lambda s: str(s["symbol"])))
        qty = max(1, MANUAL_ORDER_WON // int(pick["base_price"]))
        self.manual = manual = ManualOrder(symbol=pick["symbol"], qty=qty, tier=thinnest, at=now)
        r = await self.http.post("/sim/manual-order", json={"account": self.account, "symbol": manual.symbol,
                                                            "side": "BUY", "qty": qty})
        body = r.json()
        if r.status_code == 200:
            manual.odno = str(body["odno"])
        else:
            manual.error = f"HTTP {r.status_code}: {body}"

    async def _sim_now(self) -> datetime:
        body = (await self.http.get("/sim/clock")).json()
        return datetime.fromisoformat(body.get("now") or body.get("at"))

    async def _day_done(self, now: datetime) -> bool:
        """Nothing held and nothing open at the broker, and Strategy has closed the day."""
        balance = (await self.http.get("/sim/balance", params={"account": self.account})).json()
        if any(_qty(h) for h in (balance.get("holdings") or {}).values()):
            return False
        if any(o.get("remaining_qty", 0) > 0 and o["status"] in ("ACCEPTED", "PARTIAL")
               for o in await self._broker("/sim/orders")):
            return False
        closed = await self._rows("day_closed", {"trade_date": kst(now).date()}) or [{"n": 0}]
        return int(closed[0]["n"]) > 0

    async def _watch_locks(self) -> None:
        """No symbol is ever held by two live workers.

        A SIGKILLed worker's row says HOLD until the reaper marks it EXIT, but a dead process holds
        nothing: its lock expires after the TTL and only then may another worker take the symbol
        over.  So "live" is a heartbeat within the lock TTL, the same test the lock itself applies.
        """
        async with await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row) as conn:
            rows = await (await conn.execute(Q["double_holds"], {"ttl_s": LOCK_TTL_S})).fetchall()
        self.double_holds += [r["current_symbol"] for r in rows]

    async def _settle(self, within: float = 180) -> None:
        """Wait until the book holds still, so the invariants compare two pictures of one moment.

        Still means: nothing open or in doubt here, our fills equal the broker's, the broker's list
        of fills unchanged for ``SETTLED_FOR_S``, and a position check by Execution made in that
        time (so the verdict the invariants read describes the settled book).  A session that ends
        before the close first halts entries as an operator would (``stock-manager halt``): the
        market is still open, and a new entry sent while the invariants read would be a moving target.
        """
        if not self.reaches_close:
            await self._halt_entries()
        deadline = time.monotonic() + within
        since, fills_seen = datetime.now(KST), -1
        while time.monotonic() < deadline:
            n = len(await self._broker("/sim/fills"))
            if n != fills_seen or not await self._quiet():
                since, fills_seen = datetime.now(KST), n
            elif (datetime.now(KST) - since).total_seconds() >= SETTLED_FOR_S \
                    and await self._position_checked_since(since):
                return
            await asyncio.sleep(1)

    async def _quiet(self) -> bool:
        async with await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row) as conn:
            row = await (await conn.execute(Q["unsettled"], STATUS_SETS)).fetchone()
        return row is not None and row["intents"] == 0 and row["orders"] == 0 and not await self._fill_mismatches()

    async def _halt_entries(self) -> None:
        # a thread, not an asyncio subprocess: those need the proactor loop on Windows, psycopg the selector
        await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "stock_manager", "halt", "--reason", "soak: the session is over"],
            env={**os.environ, **self.env()}, stdout=subprocess.DEVNULL, check=False)

    async def _position_checked_since(self, since: datetime) -> bool:
        try:
            async with await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row) as conn:
                row = await (await conn.execute(Q["position_checks_since"], {"since": since})).fetchone()
        except psycopg.errors.UndefinedTable:
            return True  # no position checks in this schema: nothing to wait for
        return row is not None and int(row["n"]) > 0

    # --- the invariants ---------------------------------------------------------------------------

    async def _broker(self, path: str) -> list[dict[str, Any]]:
        body = (await self.http.get(path)).json()
        rows = body if isinstance(body, list) else body.get(path.rsplit("/", 1)[-1], [])
        return [r for r in rows if r.get("account") in (None, self.account)]

    async def _fill_mismatches(self) -> list[str]:
        broker = {o["odno"]: o for o in await self._broker("/sim/orders") if o.get("kind", "NEW") == "NEW"}
        async with await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row) as conn:
            ours = await (await conn.execute(Q["order_fills"])).fetchall()
        bad = []
        for o in ours:
            b = broker.get(o["broker_order_no"])
            if b is None or int(o["fill_qty"]) != b["filled_qty"] or int(o["filled_qty"]) != b["filled_qty"] \
                    or Decimal(o["fill_amount"]) != Decimal(b["filled_amt"]):
                bad.append(o["broker_order_no"])
        return bad

    async def _rows(self, name: LiteralString, params: dict[str, Any] | None = None) -> list[dict[str, Any]] | None:
        """The rows of one query, or None when the schema lacks its table (a feature not there)."""
        try:
            async with await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row) as conn:
                return await (await conn.execute(Q[name], params or {})).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
            return None

    async def check(self) -> Result:
        res = Result()
        orders = await self._broker("/sim/orders")
        fills = await self._broker("/sim/fills")
        balance = (await self.http.get("/sim/balance", params={"account": self.account})).json()
        intents = await self._rows("intents") or []
        ours = await self._rows("orders")
        if ours is None:  # a schema without trade.orders.origin: every order is an intent's
            ours = [{**r, "origin": "INTENT"} for r in await self._rows("orders_before_origin") or []]
        amends = await self._rows("amendment_numbers") or []
        summary = await self._rows("summaries") or []
        fill_rows = await self._rows("fill_count") or [{"n": 0}]

        self._check_orders(res, orders, ours, amends)
        open_intents = [i for i in intents if i["status"] in ("NEW", "PROCESSING")]
        res.check("every intent is final", not open_intents, f"{len(open_intents)} open" if open_intents else "")
        doubt = [o for o in ours if o["status"] in ORDER_AWAITING_BROKER]
        res.check("nothing left in doubt", not doubt, f"{len(doubt)} orders" if doubt else "")
        mismatched = await self._fill_mismatches()
        res.check("each order's fills equal the broker's", not mismatched,
                  f"{len(mismatched)} orders differ" if mismatched else "")

        holdings = {s: q for s, h in (balance.get("holdings") or {}).items() if (q := _qty(h))}
        ours_pos = {p["symbol"]: int(p["qty"]) for p in await self._rows("open_positions") or []}
        res.check("positions equal the simulator's balance", holdings == ours_pos,
                  f"db {ours_pos} broker {holdings}" if holdings != ours_pos else f"{len(ours_pos)} open")
        res.check("no symbol was ever held by two workers", not self.double_holds, ", ".join(self.double_holds))
        if self.reaches_close:
            await self._check_close(res, holdings, ours_pos)
        await self._check_refusals(res)
        if self.restart is not None:
            self._check_restart(res)
        if self.manual is not None:
            await self._check_manual(res, ours, fills)
        implied = _realized_from_fills(fills)
        recorded = sum((Decimal(s["realized_pnl"]) for s in summary), Decimal(0))
        if holdings:
            res.check("daily summary matches the broker's fills", True, "skipped: positions still open")
        else:
            res.check("daily summary matches the broker's fills", abs(implied - recorded) <= Decimal(len(fills)),
                      f"summary {recorded} vs fills {implied}")
        bought_again = bought_again_after_sale(fills)
        res.stats.update({"intents": len(intents), "broker orders": len(orders), "broker fills": len(fills),
                          "fill rows": fill_rows[0]["n"],
                          "round trips": sum(int(s["trades_count"]) for s in summary),
                          "realized pnl": str(recorded),
                          "symbols bought again after a sale": len(bought_again)})
        return res

    def _check_orders(self, res: Result, orders: list[dict[str, Any]], ours: list[dict[str, Any]],
                      amends: list[dict[str, Any]]) -> None:
        by_odno = {o["broker_order_no"]: o for o in ours if o["broker_order_no"]}
        linked = set(by_odno) | {a["broker_order_no"] for a in amends}
        strays = [o["odno"] for o in orders if o["odno"] not in linked]
        manual_rows = {odno for odno, o in by_odno.items() if o["origin"] == "MANUAL"}
        res.check("every broker order is an intent's or a recorded manual one", not strays,
                  f"{len(strays)} stray: {strays[:5]}" if strays else f"{len(manual_rows)} manual")
        by_hand = {self.manual.odno} if self.manual is not None and self.manual.odno else set()
        wrongly = sorted(manual_rows - by_hand)
        res.check("only orders placed by hand are MANUAL", not wrongly,
                  f"ours marked MANUAL: {wrongly[:5]}" if wrongly else "")
        per_intent: dict[str, int] = defaultdict(int)
        for o in orders:
            row = by_odno.get(o["odno"])
            if o.get("kind", "NEW") == "NEW" and row is not None and row["intent_id"] is not None:
                per_intent[str(row["intent_id"])] += 1
        twice = [k for k, n in per_intent.items() if n > 1]
        res.check("no intent has two broker orders", not twice, f"{len(twice)} intents" if twice else "")

    async def _check_close(self, res: Result, holdings: dict[str, int], ours_pos: dict[str, int]) -> None:
        """After the close: flat everywhere, and the broker and the database agreed all along."""
        res.check("flat at the broker after the close", not holdings, str(holdings) if holdings else "")
        ledger = {r["symbol"]: int(r["qty"]) for r in await self._rows("ledger_not_flat") or []}
        res.check("flat in the database (position_state and the ledger of fills)", not ours_pos and not ledger,
                  f"position_state {ours_pos} fills {ledger}" if ours_pos or ledger else "")
        locks = await self._rows("locks") or []
        res.check("no lock remains after the close", not locks, str(locks) if locks else "")
        verdicts = await self._rows("position_verdicts")
        if verdicts is None:
            res.check("positions agree with the broker's (latest check AGREE, no DRIFT)", False,
                      "no trade.position_checks in this schema")
        else:
            v = verdicts[0]
            ok = v["latest"] == "AGREE" and int(v["drifts"]) == 0
            res.check("positions agree with the broker's (latest check AGREE, no DRIFT)", ok,
                      f"latest {v['latest']}{' ' + str(v['latest_diffs']) if v['latest_diffs'] else ''}, "
                      f"{v['checks']} checks, "
                      f"{v['mismatches']} MISMATCH, {v['drifts']} DRIFT")
        halts = await self._rows("drift_halts") or [{"halts": 0, "state": "?", "reason": ""}]
        h = halts[0]
        drift_halted = int(h["halts"]) > 0 or (h["state"] == "HALTED" and "POSITION_DRIFT" in (h["reason"] or ""))
        res.check("trading never HALTED for POSITION_DRIFT", not drift_halted,
                  f"{h['halts']} halts; now {h['state']}: {h['reason']}" if drift_halted else f"now {h['state']}")

    async def _check_refusals(self, res: Result) -> None:
        """A sell refused for want of shares: in a fault-free day the shares were always there."""
        refusals = await self._rows("share_refusals") or []
        detail = "; ".join(
            f"{r['symbol']} at {kst(r['market_ts']):%H:%M:%S} ({r['order_type']} {r['reason']}, stage {r['stage']}): "
            f"{r['message']}" if r["market_ts"] is not None else f"{r['symbol']}: {r['message']}"
            for r in refusals[:3])
        if self.faults:
            res.stats["'not enough shares' refusals"] = len(refusals)
        else:
            res.check("no sell refused for 'not enough shares'", not refusals,
                      f"{len(refusals)}: {detail}" if refusals else "")

    def _check_restart(self, res: Result) -> None:
        r = self.restart
        assert r is not None
        # children stop on stdin closing and exit 0; -SIGTERM is what uvicorn re-raises after a graceful
        # stop by signal (someone sent one by hand); a child killed after the grace did not stop
        unclean = {k: v for k, v in r.exit_codes.items() if v not in (0, -signal.SIGTERM)}
        res.check("the midday restart stopped every child cleanly", not unclean,
                  f"exit codes {r.exit_codes}")
        res.check("the simulator kept its orders across the restart", r.orders_after >= r.orders_before,
                  f"{r.orders_before} before, {r.orders_after} after")
        res.check("the simulator's clock resumed where it stopped", not r.clock_set_back,
                  f"it came back at {r.reported}; the soak set it back" if r.clock_set_back
                  else f"stopped {kst(r.stopped_at):%H:%M:%S}")
        resumed = kst(r.resumed_at).strftime("%H:%M:%S") if r.resumed_at else "?"
        res.stats["midday restart"] = (
            f"stopped {kst(r.stopped_at):%H:%M:%S}, resumed {resumed}"
            + (f" (the soak set the clock back: the simulator came back at {r.reported})" if r.clock_set_back else "")
            + f"; stopping took {r.stop_s}s, the whole restart {r.wall_s}s wall")

    async def _check_manual(self, res: Result, ours: list[dict[str, Any]], fills: list[dict[str, Any]]) -> None:
        m = self.manual
        assert m is not None
        if m.odno is None:
            res.check("the manual order was recorded as MANUAL", False, f"the simulator refused it: {m.error}")
            return
        row = next((o for o in ours if o["broker_order_no"] == m.odno), None)
        events = [e for e in await self._rows("manual_events") or [] if e["broker_order_no"] == m.odno]
        ok = row is not None and row["origin"] == "MANUAL" and row["intent_id"] is None and bool(events)
        res.check("the manual order was recorded as MANUAL", ok,
                  f"order {'origin ' + row['origin'] if row else 'missing'}, {len(events)} ManualOrder events")
        bought = sum(int(f["qty"]) for f in fills if f["odno"] == m.odno)
        sold = await self._rows("sell_reasons", {"symbol": m.symbol}) or []
        # bought just before the closing call: the close sells it, with a sell placed before 15:20
        # (if it saw the position in time) or after the uncross, never one sent into the call
        written = await self._rows("sells_written", {"symbol": m.symbol}) or []
        into_call = [w for w in written if dtime(15, 20) <= kst(w["market_ts"]).time() < dtime(15, 31)]
        held = all(kst(r["first_fill"]).time() >= dtime(15, 20) for r in sold if r["first_fill"] is not None)
        res.check("the thin manual buy was sold by the close, nothing sent into the closing call", bought > 0
                  and bool(sold) and not into_call and all(r["reason"] == "FORCED_LIQUIDATION" for r in sold),
                  (", ".join(f"{r['reason']} {r['order_types']} x{r['qty']} from {kst(r['first_fill']):%H:%M:%S}"
                             for r in sold) or "never sold")
                  + ("; held through the closing call" if held and sold else "; sold before 15:20")
                  + (f"; {len(into_call)} sells written into the call" if into_call else ""))
        res.stats["manual order"] = (
            f"{m.symbol} (tier {m.tier}) BUY {m.qty} at {kst(m.at):%H:%M:%S}, {bought} filled; sold by "
            + (", ".join(f"{r['reason']} x{r['qty']}" for r in sold) or "nobody"))


def _qty(holding: Any) -> int:
    return int(holding.get("qty", 0) if isinstance(holding, dict) else holding)


def bought_again_after_sale(fills: list[dict[str, Any]]) -> list[str]:
    """Symbols bought again the same day after a sale of them: re-entry after the cooldown."""
    sold: set[tuple[str, str]] = set()
    again: set[str] = set()
    for f in sorted(fills, key=lambda f: (str(f["ts"]), int(f["exec_seq"]))):
        key = (str(f.get("trade_date", "")), str(f["symbol"]))
        if f["side"] == "SELL":
            sold.add(key)
        elif key in sold:
            again.add(key[1])
    return sorted(again)


def _realized_from_fills(fills: list[dict[str, Any]]) -> Decimal:
    """Net cash of the day's round trips: sells minus buys minus fees and taxes (flat at the end)."""
    total = Decimal(0)
    for f in fills:
        amount = Decimal(f["qty"]) * Decimal(str(f["price"]))
        total += amount if f.get("side") == "SELL" else -amount
        total -= Decimal(str(f.get("fee", 0))) + Decimal(str(f.get("tax", 0)))
    return total


def across_seeds(results: dict[int | None, Result]) -> Result:
    """What only several days together can show: re-entries happen somewhere, and every day passed."""
    res = Result()
    again = {seed: r.stats.get("symbols bought again after a sale", 0) for seed, r in results.items()}
    res.check("some symbol was bought again after a sale", sum(again.values()) > 0,
              ", ".join(f"seed {s}: {n}" for s, n in again.items()))
    failed = [str(s) for s, r in results.items() if not r.ok]
    res.check("every day passed", not failed, f"failed seeds: {', '.join(failed)}" if failed else "")
    return res


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def next_trading_day(at_kst: str) -> datetime:
    """The next KRX trading day at ``HH:MM`` KST, so the soak always runs on a regular day: never a
    weekend, a holiday (the simulator follows XKRX) or a day with shifted hours (a 10:00 open)."""
    hh, mm = (int(x) for x in at_kst.split(":"))
    today = datetime.now(KST).date()
    days = xkrx_calendar(today, today + timedelta(days=40))
    day = days.next_trading_day(today)
    while (s := days.session(day)) is None or s.kind is not DayKind.REGULAR:
        day = days.next_trading_day(day)
    return datetime.combine(day, dtime(hh, mm), KST)


def day_soak(admin_url: str, *, speed: float, workers: int, log_dir: Path, market_seed: int | None,
             faults: bool = False, kill_every_s: float = 0, seed: int = 1, strategy: str | None = None,
             strategy_version: str = "breakout-v1") -> Soak:
    """A whole trading day: 09:00 to flat after the close, restarted at noon, a manual buy at 15:19:30."""
    start = next_trading_day(DAY_START)
    minutes = (datetime.combine(start.date(), DAY_END, KST) - start).total_seconds() / 60
    return Soak(admin_url, start=start, minutes=minutes, speed=speed, kill_every_s=kill_every_s, faults=faults,
                workers=workers, seed=seed, log_dir=log_dir, market_seed=market_seed, restart_at=DAY_RESTART,
                manual_at=DAY_MANUAL, strategy=strategy, strategy_version=strategy_version)


def _seeds(text: str | None) -> list[int | None]:
    return [int(s) for s in text.split(",") if s.strip()] if text else [None]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="stock-manager soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", default="14:40", help="market time (KST) the session starts, HH:MM")
    ap.add_argument("--minutes", type=float, default=52, help="market minutes to run")
    ap.add_argument("--day", action="store_true",
                    help="a whole day instead of --start/--minutes: 09:00 to flat after the close, the stack "
                         "restarted at 12:00, a manual buy at 15:12 (faults and kills off unless asked for)")
    ap.add_argument("--speed", type=float, default=60, help="simulator clock speed")
    ap.add_argument("--kill-every", type=float, default=None,
                    help="wall seconds between SIGKILLs (0: none; default 15, or 0 with --day)")
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--faults", action="store_true", help="with --day: simulator faults on")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--strategy", default=None, metavar="SPEC",
                    help="SM_STRATEGY for the day: package.module:Class, path/to/file.py:Class or an entry-point name")
    ap.add_argument("--strategy-version", default="breakout-v1", metavar="NAME-VERSION",
                    help="the strategy's name-version, which the day's soak parameters are seeded for")
    ap.add_argument("--seed", type=int, default=1, help="seed of the soak's own choices (kills, the manual symbol)")
    ap.add_argument("--market-seed", default=None,
                    help="the simulator's market seed, or several separated by commas (one run each)")
    ap.add_argument("--keep", action="store_true", help="keep the soak database afterwards")
    args = ap.parse_args(argv)
    admin = os.environ.get("DATABASE_URL") or "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    base_dir = Path(".stock-manager") / "soak"
    seeds = _seeds(args.market_seed)
    results: dict[int | None, Result] = {}
    for market_seed in seeds:
        log_dir = base_dir / f"seed-{market_seed}" if len(seeds) > 1 else base_dir
        if args.day:
            soak = day_soak(admin, speed=args.speed, workers=args.workers, log_dir=log_dir,
                            market_seed=market_seed, faults=args.faults, kill_every_s=args.kill_every or 0,
                            seed=args.seed, strategy=args.strategy, strategy_version=args.strategy_version)
        else:
            kill_every = 15 if args.kill_every is None else args.kill_every
            soak = Soak(admin, start=next_trading_day(args.start), minutes=args.minutes, speed=args.speed,
                        kill_every_s=kill_every, faults=not args.no_faults, workers=args.workers,
                        seed=args.seed, log_dir=log_dir, market_seed=market_seed)
        t0 = time.monotonic()
        results[market_seed] = result = asyncio.run(_run(soak, keep=args.keep))
        print(f"== market seed {market_seed if market_seed is not None else 'default'}"
              f" ({time.monotonic() - t0:.0f}s wall)")
        print(result.render())
        print(f"\nlogs: {log_dir}\n", flush=True)
    ok = all(r.ok for r in results.values())
    if args.day:
        overall = across_seeds(results)
        print(overall.render())
        ok = ok and overall.ok
    if not ok:
        print("SOAK FAILED: an invariant broke", file=sys.stderr)
        return 1
    return 0


async def _run(soak: Soak, *, keep: bool) -> Result:
    try:
        return await soak.run()
    finally:
        if not keep:
            await soak.drop_db()


if __name__ == "__main__":
    sys.exit(main())
