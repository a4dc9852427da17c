"""The whole stack under faults, then every invariant checked against the simulator's ground truth.

``python -m stock_manager.soak --minutes 45 --speed 60 --kill-every 20`` runs, on a fresh database
(created on the server of ``DATABASE_URL``, or on the local PostgreSQL), the simulator and the three
services as separate processes under the real supervisor, with simulator faults on (5xx, EGW00201,
timeouts, lost responses, dropped WebSockets, duplicated notices), and SIGKILLs each service in turn
(the supervisor restarts it).  The market runs from ``--start`` for ``--minutes`` of market time
(a session that reaches 15:30 KST includes the forced liquidation).  At the end it switches the
faults off, lets every service settle, and prints the invariants:

- every broker order belongs to exactly one intent, and no intent has two broker orders;
- every intent is final; nothing is left in doubt;
- each order's fills sum to the broker's filled quantity and amount;
- positions in the database equal the simulator's balance;
- no symbol lock remains after the close, and no symbol was ever held by two workers;
- the daily summary's realized PnL equals what the simulator's fills imply.

It exits 1 and says which invariant broke.  A short version runs in CI (tests/e2e/test_soak.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.clock import KST
from shared.db.migrate import migrate
from shared.market_rules import Market, price_limits
from stock_manager.supervisor import ChildSpec, Supervisor

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
                 faults: bool, workers: int, seed: int, log_dir: Path) -> None:
        self.server_url = admin_url
        self.dbname = f"sm_soak_{uuid.uuid4().hex[:8]}"
        self.url = _with_db(admin_url, self.dbname)
        self.start = start
        self.minutes = minutes
        self.speed = speed
        self.kill_every_s = kill_every_s
        self.faults = faults
        self.workers = workers
        self.rng = random.Random(seed)
        self.log_dir = log_dir
        self.port = _free_port()
        self.sim_url = f"http://127.0.0.1:{self.port}"
        self.account = f"{uuid.uuid4().int % 10**8:08d}-01"
        self.app_key = "PS" + uuid.uuid4().hex + "soak"
        self.http = httpx.AsyncClient(base_url=self.sim_url, timeout=10)
        self.kills: dict[str, int] = defaultdict(int)
        self.double_holds: list[str] = []

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
            "SM_EXEC_OWNER_DEAD_AFTER_S": "4", "SM_EXEC_IN_DOUBT_GRACE_S": "2", "SM_EXEC_LEASE_TTL_S": "5",
            "SM_EXEC_MISSING_FILL_GRACE_S": "4", "SM_STRATEGY_WORKERS": str(self.workers),
            # a dead worker is reaped (EXIT) before its lock can expire and be taken over
            "SM_STRATEGY_LOCK_TTL_S": str(LOCK_TTL_S), "SM_STRATEGY_WORKER_TTL_S": "5",
            "SM_STRATEGY_HEARTBEAT_S": "1",
            "SM_STRATEGY_INTENT_TIMEOUT_S": "20", "PYTHONUNBUFFERED": "1",
        }

    def specs(self) -> list[ChildSpec]:
        exe = [sys.executable, "-m", "stock_manager", "run"]
        env = self.env()
        sim = ChildSpec("kis-sim", [*exe, "kis-sim", "--port", str(self.port)], env,
                        ready=lambda: _port_open(self.port))
        return [sim, *(ChildSpec(s, [*exe, s], {**env, "SM_INSTANCE_ID": f"soak-{s}"}) for s in SERVICES)]

    async def seed(self) -> None:
        """The symbol master and today's parameters; the clock where the session should start."""
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            body = (await self.http.get("/sim/symbols")).json()
            rows = body["symbols"] if isinstance(body, dict) else body
            async with conn.cursor() as cur:
                for s in rows:
                    market = Market(s["market"])
                    lo, hi = price_limits(int(s["base_price"]), market)
                    await cur.execute(
                        "INSERT INTO market.symbols (symbol, name, market, base_price, upper_limit, lower_limit,"
                        " prev_high, prev_low, halted) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                        (s["symbol"], s["name"], s["market"], s["base_price"], hi, lo, s.get("prev_high"),
                         s.get("prev_low"), s["halted"]))
            await conn.execute(
                "INSERT INTO trade.strategy_params (params_version, effective_date, strategy_version, params, note)"
                " VALUES ('soak', %s, 'breakout-v1', %s, 'soak: short indicators') ON CONFLICT DO NOTHING",
                (self.start.date() - timedelta(days=1), Jsonb(SOAK_PARAMS)))

    # --- the run ----------------------------------------------------------------------------------

    async def run(self) -> Result:
        await self.create_db()
        sup = Supervisor(self.specs(), log_dir=self.log_dir, min_backoff_s=0.5, max_backoff_s=2)
        runner: asyncio.Task[None] | None = None
        try:
            # the simulator first, alone, to set its clock and seed the symbols before anyone trades
            await sup.start_all_of(1)
            await self.http.post("/sim/clock", json={"at": self.start.isoformat(), "speed": 1})
            await self.seed()
            if self.faults:
                await self.http.post("/sim/faults", json=FAULTS)
            await self.http.post("/sim/clock", json={"speed": self.speed})
            runner = asyncio.create_task(sup.run())
            await self._session(sup)
            await self.http.post("/sim/faults", json=NO_FAULTS)
            await self._settle()
            result = await self.check()
            result.stats["kills"] = dict(self.kills)
            result.stats["restarts"] = {c.spec.name: c.restarts for c in sup.children}
            return result
        finally:
            sup.request_stop()
            if runner is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(runner, 60)
            await self.http.aclose()

    async def _session(self, sup: Supervisor) -> None:
        end = self.start + timedelta(minutes=self.minutes)
        next_kill = time.monotonic() + self.kill_every_s
        victims = list(SERVICES)
        while True:
            now = await self._sim_now()
            if now >= end:
                return
            await self._watch_locks()
            if self.kill_every_s > 0 and time.monotonic() >= next_kill:
                name = victims[sum(self.kills.values()) % len(victims)]
                child = next(c for c in sup.children if c.spec.name == name)
                if child.pid:
                    os.kill(child.pid, signal.SIGKILL)
                    self.kills[name] += 1
                next_kill = time.monotonic() + self.kill_every_s * self.rng.uniform(0.6, 1.4)
            await asyncio.sleep(0.5)

    async def _sim_now(self) -> datetime:
        body = (await self.http.get("/sim/clock")).json()
        return datetime.fromisoformat(body.get("now") or body.get("at"))

    async def _watch_locks(self) -> None:
        """No symbol is ever held by two live workers.

        A SIGKILLed worker's row says HOLD until the reaper marks it EXIT, but a dead process holds
        nothing: its lock expires after the TTL and only then may another worker take the symbol
        over.  So "live" is a heartbeat within the lock TTL, the same test the lock itself applies.
        """
        async with await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row) as conn:
            rows = await (await conn.execute(
                "SELECT current_symbol, count(*) AS n FROM trade.workers WHERE status = 'HOLD'"
                " AND heartbeat_ts > clock_timestamp() - make_interval(secs => %s)"
                " GROUP BY current_symbol HAVING count(*) > 1", (LOCK_TTL_S,))).fetchall()
        self.double_holds += [r["current_symbol"] for r in rows]

    async def _settle(self, within: float = 180) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            async with await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row) as conn:
                row = await (await conn.execute(
                    "SELECT (SELECT count(*) FROM trade.order_intents WHERE status IN ('NEW', 'PROCESSING')) AS i,"
                    " (SELECT count(*) FROM trade.orders WHERE status IN ('PENDING_SUBMIT', 'IN_DOUBT')) AS o"
                )).fetchone()
            if row is not None and row["i"] == 0 and row["o"] == 0 and not await self._fill_mismatches():
                await asyncio.sleep(5)  # one more reconcile and book round
                return
            await asyncio.sleep(1)

    # --- the invariants ---------------------------------------------------------------------------

    async def _broker(self, path: str) -> list[dict[str, Any]]:
        body = (await self.http.get(path)).json()
        rows = body if isinstance(body, list) else body.get(path.rsplit("/", 1)[-1], [])
        return [r for r in rows if r.get("account") in (None, self.account)]

    async def _fill_mismatches(self) -> list[str]:
        broker = {o["odno"]: o for o in await self._broker("/sim/orders") if o.get("kind", "NEW") == "NEW"}
        async with await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row) as conn:
            ours = await (await conn.execute(
                "SELECT o.broker_order_no, o.filled_qty, coalesce(sum(f.qty), 0) AS fq,"
                " coalesce(sum(f.qty * f.price), 0) AS famt FROM trade.orders o"
                " LEFT JOIN trade.fills f ON f.order_id = o.order_id WHERE o.broker_order_no IS NOT NULL"
                " GROUP BY o.order_id")).fetchall()
        bad = []
        for o in ours:
            b = broker.get(o["broker_order_no"])
            if b is None or int(o["fq"]) != b["filled_qty"] or int(o["filled_qty"]) != b["filled_qty"] \
                    or Decimal(o["famt"]) != Decimal(b["filled_amt"]):
                bad.append(o["broker_order_no"])
        return bad

    async def check(self) -> Result:
        res = Result()
        orders = await self._broker("/sim/orders")
        fills = await self._broker("/sim/fills")
        balance = (await self.http.get("/sim/balance", params={"account": self.account})).json()
        async with await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row) as conn:
            intents = await (await conn.execute("SELECT intent_id, status FROM trade.order_intents")).fetchall()
            ours = await (await conn.execute(
                "SELECT order_id, intent_id, broker_order_no, status FROM trade.orders")).fetchall()
            amends = await (await conn.execute(
                "SELECT broker_order_no FROM trade.order_amendments WHERE broker_order_no IS NOT NULL")).fetchall()
            positions = await (await conn.execute(
                "SELECT symbol, qty FROM trade.position_state WHERE qty <> 0")).fetchall()
            locks = await (await conn.execute("SELECT symbol, worker_id FROM trade.symbol_locks")).fetchall()
            summary = await (await conn.execute(
                "SELECT trade_date, realized_pnl, trades_count FROM trade.daily_summaries")).fetchall()
            fill_rows = await (await conn.execute("SELECT count(*) AS n FROM trade.fills")).fetchone()

        new_orders = [o for o in orders if o.get("kind", "NEW") == "NEW"]
        by_odno = {o["broker_order_no"]: o for o in ours if o["broker_order_no"]}
        linked = set(by_odno) | {a["broker_order_no"] for a in amends}
        strays = [o["odno"] for o in orders if o["odno"] not in linked]
        res.check("every broker order belongs to an intent", not strays, f"{len(strays)} stray" if strays else "")
        per_intent: dict[str, int] = defaultdict(int)
        for o in new_orders:
            if o["odno"] in by_odno:
                per_intent[str(by_odno[o["odno"]]["intent_id"])] += 1
        twice = [k for k, n in per_intent.items() if n > 1]
        res.check("no intent has two broker orders", not twice, f"{len(twice)} intents" if twice else "")
        open_intents = [i for i in intents if i["status"] in ("NEW", "PROCESSING")]
        res.check("every intent is final", not open_intents, f"{len(open_intents)} open" if open_intents else "")
        doubt = [o for o in ours if o["status"] in ("PENDING_SUBMIT", "IN_DOUBT")]
        res.check("nothing left in doubt", not doubt, f"{len(doubt)} orders" if doubt else "")
        mismatched = await self._fill_mismatches()
        res.check("each order's fills equal the broker's", not mismatched,
                  f"{len(mismatched)} orders differ" if mismatched else "")

        holdings = {s: int(h.get("qty", h) if isinstance(h, dict) else h)
                    for s, h in (balance.get("holdings") or {}).items()}
        holdings = {s: q for s, q in holdings.items() if q}
        ours_pos = {p["symbol"]: int(p["qty"]) for p in positions}
        res.check("positions equal the simulator's balance", holdings == ours_pos,
                  f"db {ours_pos} broker {holdings}" if holdings != ours_pos else f"{len(ours_pos)} open")
        res.check("no symbol was ever held by two workers", not self.double_holds, ", ".join(self.double_holds))
        reaches_close = (self.start + timedelta(minutes=self.minutes)).astimezone(KST).time() >= dtime(15, 31)
        if reaches_close:
            res.check("flat after the forced liquidation", not holdings, str(holdings) if holdings else "")
            res.check("no lock remains after the close", not locks, str(locks) if locks else "")
        implied = _realized_from_fills(fills)
        recorded = sum((Decimal(s["realized_pnl"]) for s in summary), Decimal(0))
        if holdings:
            res.check("daily summary matches the broker's fills", True, "skipped: positions still open")
        else:
            res.check("daily summary matches the broker's fills", abs(implied - recorded) <= Decimal(len(fills)),
                      f"summary {recorded} vs fills {implied}")
        res.stats.update({"intents": len(intents), "broker orders": len(orders), "broker fills": len(fills),
                          "fill rows": fill_rows["n"] if fill_rows else 0,
                          "round trips": sum(int(s["trades_count"]) for s in summary),
                          "realized pnl": str(recorded)})
        return res


def _realized_from_fills(fills: list[dict[str, Any]]) -> Decimal:
    """Net cash of the day's round trips: sells minus buys minus fees and taxes (flat at the end)."""
    total = Decimal(0)
    for f in fills:
        amount = Decimal(f["qty"]) * Decimal(str(f["price"]))
        total += amount if f.get("side") == "SELL" else -amount
        total -= Decimal(str(f.get("fee", 0))) + Decimal(str(f.get("tax", 0)))
    return total


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def next_weekday(at_kst: str) -> datetime:
    """The next Monday-Friday at ``HH:MM`` KST (so the soak always runs on a trading day)."""
    hh, mm = (int(x) for x in at_kst.split(":"))
    day = datetime.now(KST).replace(hour=hh, minute=mm, second=0, microsecond=0) + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="stock-manager soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", default="14:40", help="market time (KST) the session starts, HH:MM")
    ap.add_argument("--minutes", type=float, default=52, help="market minutes to run")
    ap.add_argument("--speed", type=float, default=60, help="simulator clock speed")
    ap.add_argument("--kill-every", type=float, default=15, help="wall seconds between SIGKILLs (0: none)")
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the soak database afterwards")
    args = ap.parse_args(argv)
    admin = os.environ.get("DATABASE_URL") or "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    log_dir = Path(".stock-manager") / "soak"
    soak = Soak(admin, start=next_weekday(args.start), minutes=args.minutes, speed=args.speed,
                kill_every_s=args.kill_every, faults=not args.no_faults, workers=args.workers, seed=args.seed,
                log_dir=log_dir)

    async def go() -> Result:
        try:
            return await soak.run()
        finally:
            if not args.keep:
                await soak.drop_db()

    result = asyncio.run(go())
    print(result.render())
    print(f"\nlogs: {log_dir}")
    if not result.ok:
        print("SOAK FAILED: an invariant broke", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
