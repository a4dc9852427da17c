"""Trading workers: IDLE -> SCAN -> HOLD -> SCAN ... -> EXIT.

A worker holds at most one symbol.  In SCAN it adopts an orphaned position if there is one (its
worker died), else takes the best signal it can lock, passes the risk checks and writes an ENTRY
intent, then waits for Execution: a real position moves it to HOLD, a rejection releases the lock
and it scans on.  In HOLD it watches only the exit rules and writes EXIT intents; when the position
is flat it releases the lock and scans again.  The rules judge PriceSync's quote only while it is
young (``max_quote_age_s``); an older one is replaced by the broker's REST quote, and with neither
there is no decision that step.  Forced liquidation is the liquidator's (it orders all positions by
liquidity), so a holding worker only watches while it runs.

``step`` does one bounded piece of work and returns: the loop paces it, tests drive it directly.
Every transition is a row in trade.worker_history and an INFO log line with worker id, pid and
status; the database refuses an illegal one.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from loguru import logger
from psycopg import AsyncConnection

from stock_manager.services.strategy import book, locks, ops
from stock_manager.services.strategy.intents import (
    Fate,
    IntentSpec,
    entry_key,
    exit_key_prefix,
    open_sell_qty,
    outcome,
    request_cancel,
    sells_written,
    write_intent,
)
from stock_manager.services.strategy.port import (
    FORCED_REASONS,
    EntrySignal,
    ExitKind,
    ExitReason,
    MarketSnapshot,
    PositionSnapshot,
)
from stock_manager.services.strategy.queries import Q
from stock_manager.services.strategy.quotes import RestQuote
from stock_manager.services.strategy.rules.exits import PriceSource, quote_age_limit_s, quote_is_stale
from stock_manager.services.strategy.rules.liquidation import flatten_requested, in_liquidation_window
from stock_manager.services.strategy.rules.market_state import entry_refusals, market_state_inputs, may_cancel_resting
from stock_manager.services.strategy.rules.risk import EntryProposal, check_entry, check_exit
from stock_manager.services.strategy.runtime import Runtime, monotonic, pace, trading_state
from stock_manager.services.strategy.scanner import Scanner, snapshot_args, snapshot_of
from stock_manager.shared.clock import kst
from stock_manager.shared.locks import Lock, lock_params
from stock_manager.shared.market_rules import Phase, phase_at
from stock_manager.shared.trade_states import WorkerStatus

W = WorkerStatus
GLOBAL_RULES = frozenset({"trading_state", "daily_loss_limit", "capital_limit", "max_positions"})


class WorkerLost(Exception):
    """The database says this worker is gone (declared dead by a reaper): it must stop."""


class Try(StrEnum):
    NEXT = "NEXT"  # this candidate is out; try the next one
    STOP = "STOP"  # stop trying entries for this step
    ENTERED = "ENTERED"


@dataclass
class Pending:
    intent_id: uuid.UUID
    kind: str  # ENTRY | EXIT
    symbol: str
    started: float
    partial: bool = False
    warned: float = 0.0
    vi_noted: bool = False


@dataclass(frozen=True)
class Tick:
    """What the world looks like at the start of a step."""

    now: datetime
    state: str
    reason: str | None
    phase: Phase
    liquidating: bool

    @property
    def in_session(self) -> bool:
        return self.phase in (Phase.CONTINUOUS, Phase.CLOSING_AUCTION)


def _published(q: Any, now: datetime, limit: float) -> dict[str, Any]:
    """What PriceSync had published, for the record of a decision taken on another price."""
    if q is None:
        return {"price": None, "ts": None, "age": "missing", "limit_s": limit}
    age = (now - q["ts"]).total_seconds()
    return {"price": q["price"], "ts": q["ts"], "age": f"{age:.0f}s old", "age_s": round(age, 1), "limit_s": limit}


def strategy_exit_reason(reason: object) -> ExitReason | None:
    """A strategy's exit reason, if it is one a strategy may give: the close's and flatten's are the
    product's (re-entry and the day's summary tell them apart by it)."""
    try:
        r = ExitReason(str(reason)) if reason is not None else None
    except ValueError:
        return None
    return None if r is None or r.value in FORCED_REASONS else r


def entry_reason(strategy_name: str) -> str:
    """trade.order_intents.reason of an entry: SIGNAL_ and the strategy's name (SIGNAL_BREAKOUT)."""
    return "SIGNAL_" + "".join(c if c.isalnum() else "_" for c in strategy_name).upper()


class Worker:
    def __init__(self, rt: Runtime, index: int, scanner: Scanner) -> None:
        self.rt = rt
        self.scanner = scanner
        self.worker_id = f"{rt.instance_id}-w{index}-{uuid.uuid4().hex[:6]}"
        self.pid = os.getpid()
        self.status: WorkerStatus = W.IDLE
        self.symbol: str | None = None
        self.pending: Pending | None = None
        self.entry_seq = 0
        self.tried: set[str] = set()
        self.tried_scan: uuid.UUID | None = None
        self.lost = False
        self.registered = False
        self._last_monitor: datetime | None = None
        self._last_no_quote: datetime | None = None
        self._rest: RestQuote | None = None
        self._retry_after = 0.0

    # --- lifecycle -----------------------------------------------------------------------------

    async def register(self) -> None:
        async with self.rt.pool.connection() as conn:
            await conn.execute(Q["register_worker"], {
                "worker_id": self.worker_id, "instance_id": self.rt.instance_id, "pid": self.pid,
                "host": socket.gethostname(), "market_ts": self.rt.now()})
            await ops.emit(conn, "WorkerStarted", f"worker {self.worker_id} started (pid {self.pid}, status IDLE)",
                           worker_id=self.worker_id, market_ts=self.rt.now(), pid=self.pid, status="IDLE",
                           instance_id=self.rt.instance_id)
        self.registered = True

    async def _move(self, conn: AsyncConnection[Any], to: WorkerStatus, *, symbol: str | None, reason: str) -> None:
        frm = self.status
        row = await (await conn.execute(Q["transition_worker"], {
            "worker_id": self.worker_id, "from_status": frm.value, "to_status": to.value, "symbol": symbol,
            "history_symbol": self.symbol, "reason": reason, "market_ts": self.rt.now()})).fetchone()
        if row is None:
            self.lost = True
            raise WorkerLost(f"worker {self.worker_id} is no longer {frm}")
        logger.info("worker {} pid {} status {} -> {} symbol {} ({})", self.worker_id, self.pid, frm.value, to.value,
                    symbol or self.symbol or "-", reason)
        self.status = to
        self.symbol = symbol

    async def resync(self) -> None:
        """After a failed step: believe the database about our status, not memory."""
        async with self.rt.pool.connection() as conn:
            row = await (await conn.execute(Q["worker_row"], {"worker_id": self.worker_id})).fetchone()
        if row is None or row["status"] == W.EXIT:
            self.lost = True
            return
        self.status = W(row["status"])
        self.symbol = row["current_symbol"] or (self.pending.symbol if self.pending else None)

    async def shutdown(self, reason: str = "service stopping") -> None:
        """Release everything and leave as EXIT; a position left behind is adopted by another worker."""
        if self.lost or not self.registered:
            return
        try:
            async with self.rt.pool.connection() as conn:
                for r in await (await conn.execute(Q["release_worker_locks"],
                                                   {"worker_id": self.worker_id})).fetchall():
                    await ops.emit(conn, "LockReleased", f"lock {r['symbol']} released by {self.worker_id} ({reason})",
                                   symbol=r["symbol"], worker_id=self.worker_id, market_ts=self.rt.now(),
                                   locked_ts=r["locked_ts"], reason=reason)
                await self._move(conn, W.EXIT, symbol=None, reason=reason)
                await ops.emit(conn, "WorkerStopped", f"worker {self.worker_id} stopped (pid {self.pid}, status EXIT)",
                               worker_id=self.worker_id, market_ts=self.rt.now(), pid=self.pid, status="EXIT",
                               reason=reason)
        except WorkerLost:
            pass

    async def run(self) -> None:
        while not self.rt.stopping.is_set() and not self.lost:
            try:
                await self.step()
            except WorkerLost as e:
                logger.error("worker {} pid {} lost: {}", self.worker_id, self.pid, e)
                break
            except Exception as e:
                logger.opt(exception=e).error("worker {} pid {} step failed: {}: {}", self.worker_id, self.pid,
                                              type(e).__name__, e)
                try:
                    await self.resync()
                except Exception as e2:
                    logger.error("worker {} resync failed: {}", self.worker_id, type(e2).__name__)
            await pace(self.rt, self.rt.cfg.monitor_interval_s)

    # --- one step ------------------------------------------------------------------------------

    async def tick(self) -> Tick:
        now = self.rt.now()
        async with self.rt.pool.connection() as conn:
            state, reason = await trading_state(conn)
        liquidating = (in_liquidation_window(now, self.rt.cfg.liquidation_lead_min)
                       or flatten_requested(state, reason))
        return Tick(now, state, reason, phase_at(now), liquidating)

    async def step(self) -> None:
        if self.lost:
            raise WorkerLost(self.worker_id)
        t = await self.tick()
        if self.status is W.IDLE:
            if t.phase is Phase.CONTINUOUS:
                async with self.rt.pool.connection() as conn:
                    await self._move(conn, W.SCAN, symbol=None, reason="session open")
        elif self.status is W.SCAN:
            await self._scan_step(t)
        elif self.status is W.HOLD:
            await self._hold_step(t)

    # --- SCAN ----------------------------------------------------------------------------------

    async def _scan_step(self, t: Tick) -> None:
        if self.pending is not None:
            await self._poll_entry(t)
            if self.pending is not None and not t.in_session:
                await self._abandon_entry(t)
            return
        if not t.in_session:
            async with self.rt.pool.connection() as conn:
                await self._move(conn, W.IDLE, symbol=None, reason="market closed")
            return
        if await self._adopt_orphan(t):
            return
        async with self.rt.pool.connection() as conn:
            pv = await self.rt.params(conn)
        local = kst(t.now).time()
        if (t.state != "ACTIVE" or t.liquidating or t.phase is not Phase.CONTINUOUS
                or not (pv.params.entry_start <= local < pv.params.entry_end)):
            return
        await self._try_entries(t)

    async def _adopt_orphan(self, t: Tick) -> bool:
        async with self.rt.pool.connection() as conn:
            orphans = await (await conn.execute(Q["orphan_positions"])).fetchall()
        for o in orphans:
            async with self.rt.pool.connection() as conn:
                if not await locks.acquire_lock(conn, o["symbol"], self.worker_id, self.rt.cfg.lock_ttl_s, t.now):
                    continue
                await conn.execute(Q["adopt_position"], {"symbol": o["symbol"], "worker_id": self.worker_id})
                await self._move(conn, W.HOLD, symbol=o["symbol"], reason=f"adopted from {o['worker_id']}")
                await ops.emit(conn, "PositionAdopted",
                               f"{self.worker_id} adopted {o['symbol']} x{o['qty']} left by {o['worker_id']}",
                               level="WARN", symbol=o["symbol"], worker_id=self.worker_id, market_ts=t.now,
                               qty=o["qty"], previous_worker=o["worker_id"])
            self._last_monitor = None
            return True
        return False

    async def _try_entries(self, t: Tick) -> None:
        res = self.scanner.latest
        if res is None or (t.now - res.at) > timedelta(seconds=3 * self.rt.cfg.scan_interval_s):
            return
        if res.scan_id != self.tried_scan:
            self.tried, self.tried_scan = set(), res.scan_id
        async with self.rt.pool.connection() as conn:
            held = {r["symbol"] for r in await (await conn.execute(Q["open_book"])).fetchall()}
            blocked = {r["symbol"] for r in await (await conn.execute(Q["reentry_blocked"], {"now": t.now})).fetchall()}
        for e in res.signals:
            if e.symbol in self.tried or e.symbol in held or e.symbol in blocked:
                continue
            self.tried.add(e.symbol)
            if await self._try_enter(e, res.scan_id, t) is not Try.NEXT:
                return

    async def _try_enter(self, e: EntrySignal, scan_id: uuid.UUID, t: Tick) -> Try:
        res = self.scanner.latest
        assert res is not None
        row = res.rows[e.symbol]
        sym = e.symbol
        async with self.rt.pool.connection() as conn:
            pv = await self.rt.params(conn)
        p = pv.params
        strategy = self.rt.strategy
        order = strategy.size(row, p)
        if order.qty <= 0 or order.order_type not in ("MKT", "LMT") or (
                order.order_type == "LMT" and (order.limit_price is None or order.limit_price <= 0)):
            logger.info("{}: {} sized no order ({}); next candidate", sym, strategy.name, order)
            return Try.NEXT
        if await self._refused_now(sym, t):
            return Try.NEXT
        async with self.rt.pool.connection() as conn:
            if not await locks.acquire_lock(conn, sym, self.worker_id, self.rt.cfg.lock_ttl_s, t.now):
                return Try.NEXT
        async with self.rt.pool.connection() as conn:
            await conn.execute(Q["entry_gate"], lock_params(Lock.ENTRY_GATE))
            snap = await book.risk_snapshot(conn, self.rt.today(), t.state)
            violations = check_entry(self.rt.limits(p), snap, EntryProposal(sym, order.qty, order.reserve_price))
            if violations:
                for v in violations:
                    await ops.emit(conn, "RiskViolation", f"{sym}: {v.message}; entry blocked", level="WARN",
                                   symbol=sym, worker_id=self.worker_id, market_ts=t.now, rule=v.rule,
                                   qty=order.qty, reserve_price=order.reserve_price, **v.data)
                await locks.release_lock(conn, sym, self.worker_id, "risk violation", t.now)
                return Try.STOP if any(v.rule in GLOBAL_RULES for v in violations) else Try.NEXT
            cand = await (await conn.execute(Q["candidate_id"], {"scan_id": scan_id, "symbol": sym})).fetchone()
            self.entry_seq += 1
            ref = row.ask or row.price
            spec = IntentSpec(
                action_key=entry_key(self.worker_id, sym, self.rt.today().isoformat(), self.entry_seq),
                symbol=sym, side="BUY", intent_type="ENTRY", qty=order.qty, order_type=order.order_type,
                limit_price=order.limit_price, reason=entry_reason(strategy.name), worker_id=self.worker_id,
                strategy_version=pv.strategy_version, params_version=pv.version, ref_price=ref,
                context={**e.inputs, "score": e.score, "scan_id": scan_id, "reserve_price": order.reserve_price,
                         "strategy": strategy.name, "strategy_code_version": strategy.version},
                candidate_id=cand["candidate_id"] if cand else None)
            written = await write_intent(conn, spec, t.now)
            await conn.execute(Q["set_current_symbol"], {"worker_id": self.worker_id, "symbol": sym})
            await conn.execute(Q["use_reentry"], {"symbol": sym})
        self.pending = Pending(written.intent_id, "ENTRY", sym, monotonic())
        self.symbol = sym
        return Try.ENTERED

    async def _refused_now(self, sym: str, t: Tick) -> bool:
        """The market's state read again just before the entry: a VI or a designation that came
        since the scan refuses it as the scan would have (``rules/market_state.py``)."""
        async with self.rt.pool.connection() as conn:
            args = {"symbol": sym, "now": t.now, "since": t.now - timedelta(minutes=1), "depth": 1}
            r = await (await conn.execute(Q["snapshots"], args)).fetchone()
            if r is None:
                return False
            m = snapshot_of(r)
            why = entry_refusals(m, self.rt.gates)
            if why:
                await ops.emit(conn, "EntryRefused", f"{sym}: no entry ({', '.join(why)}), as the market's state "
                               "changed since the scan", symbol=sym, worker_id=self.worker_id, market_ts=t.now,
                               refused_by=why, **market_state_inputs(m))
        return bool(why)

    async def _resting_in_vi(self, pend: Pending, t: Tick) -> bool:
        """Whether the symbol of ``pend`` is in a VI auction now: its order is not to be cancelled."""
        async with self.rt.pool.connection() as conn:
            r = await (await conn.execute(Q["vi_today"], {"symbol": pend.symbol, "now": t.now})).fetchone()
        if r is None or may_cancel_resting(r["state"]):
            return False
        if not pend.vi_noted:
            pend.vi_noted = True
            logger.info("{}: intent {} rests in a VI auction ({} since {}); not cancelled while it lasts", pend.symbol,
                        pend.intent_id, r["state"], r["since"])
        return True

    async def _poll_entry(self, t: Tick) -> None:
        pend = self.pending
        assert pend is not None
        async with self.rt.pool.connection() as conn:
            o = await outcome(conn, pend.intent_id)
        elapsed = monotonic() - pend.started
        if o.fate is Fate.FAILED:
            async with self.rt.pool.connection() as conn:
                await ops.emit(conn, "OrderRejected",
                               f"entry {pend.symbol} failed: intent {o.intent_status}, order {o.order_status}: "
                               f"{o.reason}; releasing the lock", level="WARN", symbol=pend.symbol,
                               worker_id=self.worker_id, intent_id=pend.intent_id, market_ts=t.now,
                               intent_status=o.intent_status, order_status=o.order_status, reason=o.reason,
                               order_id=o.order_id)
                await locks.release_lock(conn, pend.symbol, self.worker_id, "order failed", t.now)
                await conn.execute(Q["set_current_symbol"], {"worker_id": self.worker_id, "symbol": None})
            self.pending, self.symbol = None, None
            return
        timed_out = elapsed > self.rt.cfg.intent_timeout_s
        if o.fate is Fate.WORKING and timed_out and await self._resting_in_vi(pend, t):
            return  # the unfilled rest takes part in the VI's uncross; cancelled once the VI is over
        if o.fate is Fate.DONE or (o.fate is Fate.WORKING and timed_out):
            async with self.rt.pool.connection() as conn:
                pv = await self.rt.params(conn)
                await book.sync_positions(conn, reentry_cooldown_min=pv.params.reentry_cooldown_min,
                                          market_ts=t.now, symbols=[pend.symbol])
                pos = await (await conn.execute(Q["position_row"], {"symbol": pend.symbol})).fetchone()
                if pos is None or int(pos["qty"]) <= 0:
                    return  # fills not visible yet
                if o.fate is Fate.WORKING and o.order_id is not None:
                    await request_cancel(conn, order_id=o.order_id, intent_id=pend.intent_id, symbol=pend.symbol,
                                         reason="entry timeout: cancel the unfilled rest", by=self.worker_id,
                                         market_ts=t.now)
                await self._move(conn, W.HOLD, symbol=pend.symbol, reason="entry filled")
                await ops.emit(conn, "PositionEntered",
                               f"{pend.symbol} entered: {pos['qty']} @ {pos['entry_price']} "
                               f"(order {o.order_id} {o.order_status}, filled {o.filled_qty}/{o.qty})",
                               symbol=pend.symbol, worker_id=self.worker_id, intent_id=pend.intent_id,
                               market_ts=t.now, qty=pos["qty"], entry_price=pos["entry_price"],
                               entry_ts=pos["entry_ts"], avg_price=pos["avg_price"],
                               strategy_version=pos["strategy_version"], params_version=pos["params_version"],
                               order_id=o.order_id, order_status=o.order_status, filled_qty=o.filled_qty)
            self.pending = None
            self._last_monitor = None
            return
        if timed_out and monotonic() - pend.warned > self.rt.cfg.intent_timeout_s:
            pend.warned = monotonic()
            logger.warning("entry intent {} ({}) still {} / order {} after {:.0f}s", pend.intent_id, pend.symbol,
                           o.intent_status, o.order_status, elapsed)

    async def _abandon_entry(self, t: Tick) -> None:
        """The session ended with the entry unresolved: let go of the symbol so the close leaves no lock.

        Should the order still fill, the position has no lock and the next session's first SCAN
        worker adopts it, so nothing is lost by letting go.
        """
        pend = self.pending
        assert pend is not None
        if monotonic() - pend.started <= self.rt.cfg.intent_timeout_s:
            return
        async with self.rt.pool.connection() as conn:
            await ops.emit(conn, "EntryAbandoned",
                           f"entry {pend.symbol} unresolved at the close; lock released, a late fill is adopted",
                           level="WARN", symbol=pend.symbol, worker_id=self.worker_id, intent_id=pend.intent_id,
                           market_ts=t.now)
            await locks.release_lock(conn, pend.symbol, self.worker_id, "entry unresolved at the close", t.now)
            await conn.execute(Q["set_current_symbol"], {"worker_id": self.worker_id, "symbol": None})
        self.pending, self.symbol = None, None

    # --- HOLD ----------------------------------------------------------------------------------

    async def _hold_step(self, t: Tick) -> None:
        sym = self.symbol
        assert sym is not None
        async with self.rt.pool.connection() as conn:
            pv = await self.rt.params(conn)
            await book.sync_positions(conn, reentry_cooldown_min=pv.params.reentry_cooldown_min, market_ts=t.now,
                                      symbols=[sym])
            pos = await (await conn.execute(Q["position_row"], {"symbol": sym})).fetchone()
        if pos is None or int(pos["qty"]) == 0:
            async with self.rt.pool.connection() as conn:
                await locks.release_lock(conn, sym, self.worker_id, "position closed", t.now)
                await self._move(conn, W.SCAN, symbol=None, reason="position closed")
            self.pending = None
            return
        if self.pending is not None and not await self._poll_exit(t):
            return
        if not t.in_session:
            async with self.rt.pool.connection() as conn:
                await ops.emit(conn, "PositionLeftOpen",
                               f"{sym} x{pos['qty']} still open after the regular session; lock released: the "
                               "liquidator sells it after the close or reports it, else the next session adopts it",
                               level="WARN", symbol=sym, worker_id=self.worker_id, market_ts=t.now, qty=pos["qty"])
                await locks.release_lock(conn, sym, self.worker_id, "market closed", t.now)
                await self._move(conn, W.SCAN, symbol=None, reason="market closed")
            return
        cfg = self.rt.cfg
        limit = quote_age_limit_s(cfg.max_quote_age_s, cfg.quote_age_floor_wall_s, self.rt.clock.speed)
        async with self.rt.pool.connection() as conn:
            q = await (await conn.execute(Q["snapshots"], {
                "symbol": sym, **snapshot_args(self.rt, t.now, pv.params)})).fetchone()
            published = snapshot_of(q) if q is not None else None
            quote: MarketSnapshot | None = None
            if published is not None and not quote_is_stale(published.ts, t.now, limit):
                quote = published
                await conn.execute(Q["set_high_water"], {"symbol": sym, "price": quote.price})
        acting = not t.liquidating and monotonic() >= self._retry_after
        if quote is None and acting:
            quote = await self._rest_quote(t, sym, q, published, limit)
        if not acting or quote is None:
            return  # the liquidator sells everything now; or no price fit to decide on
        holding = PositionSnapshot(symbol=sym, qty=int(pos["qty"]), avg_price=pos["avg_price"],
                                   entry_ts=pos["entry_ts"] or t.now,
                                   high_water=max(pos["high_water_price"] or quote.price, quote.price),
                                   exit_stage=int(pos["exit_stage"]))
        d = self.rt.strategy.exit(holding, quote, pv.params, t.now)
        inputs = d.inputs if quote.source == PriceSource.PRICESYNC else {
            **d.inputs, "stale_quote": _published(q, t.now, limit)}
        if d.kind is ExitKind.NONE:
            await self._monitoring(t, sym, inputs)
            return
        reason = strategy_exit_reason(d.reason)
        if reason is None or d.qty <= 0:
            logger.warning("{}: {} asked for an exit with no reason of its own or no shares ({}); ignored", sym,
                           self.rt.strategy.name, d)
            return
        async with self.rt.pool.connection() as conn:
            covered = await open_sell_qty(conn, sym)
            # the fills, not position_state, which lags a sale that has just filled by a book round
            row = await (await conn.execute(Q["held_by_fills"], {"symbol": sym})).fetchone()
            held = min(holding.qty, int(row["qty"]) if row else 0)
            qty = min(d.qty, held - covered)
            if check_exit(held, covered, qty):
                return  # already sold, or being sold
            trip = int(pos["trip_first_fill_id"])
            n = await sells_written(conn, sym, trip)
            full = d.kind is ExitKind.FULL or qty >= holding.qty
            await ops.emit(conn, "ExitTriggered", f"{sym}: {reason.value} -> sell {qty} of {holding.qty} "
                           f"(price {quote.price} from {quote.source})",
                           symbol=sym, worker_id=self.worker_id, market_ts=t.now, reason=reason, qty=qty,
                           **inputs)
            written = await write_intent(conn, IntentSpec(
                action_key=f"{exit_key_prefix(sym, trip)}{n}", symbol=sym, side="SELL",
                intent_type="EXIT_FULL" if full else "EXIT_PARTIAL", qty=qty, order_type="MKT", limit_price=None,
                reason=reason.value, worker_id=self.worker_id, strategy_version=pv.strategy_version,
                params_version=pv.version, ref_price=Decimal(quote.price),
                context={**inputs, "rule": reason, "strategy": self.rt.strategy.name}),
                t.now)
            if not full:
                await conn.execute(Q["set_exit_stage"], {"symbol": sym, "trip": trip, "stage": 1})
        self.pending = Pending(written.intent_id, "EXIT", sym, monotonic(), partial=not full)

    async def _rest_quote(self, t: Tick, sym: str, q: Any, published: MarketSnapshot | None,
                          limit: float) -> MarketSnapshot | None:
        """PriceSync's quote is stale or missing: the broker's instead, kept while it is young enough.

        The REST price lives in this worker's memory only (``market.*`` is PriceSync's); the exit it
        decides records it as its source.  None when the broker has no answer either: then no
        decision at all this step, never one on the stale price.
        """
        rest = self._rest
        if rest is None or rest.symbol != sym or quote_is_stale(rest.at, t.now, limit):
            try:
                price = await asyncio.wait_for(self.rt.quotes.price(sym), self.rt.cfg.rest_quote_timeout_s)
            except Exception as e:  # a timeout, the broker, the budget: whatever it is, no price this step
                await self._no_quote(t, sym, q, limit, f"{type(e).__name__}: {e}")
                return None
            rest = self._rest = RestQuote(sym, price, self.rt.now())
            logger.info("{}: published quote stale ({}); REST quote {} judged instead", sym,
                        _published(q, t.now, limit)["age"], price)
            async with self.rt.pool.connection() as conn:
                await conn.execute(Q["set_high_water"], {"symbol": sym, "price": price})
        if published is None:
            return MarketSnapshot(symbol=sym, market="KOSPI", price=rest.price, bid=None, ask=None, volume=None,
                                  turnover=None, change_pct=None, base_price=None, upper_limit=None, halted=False,
                                  stale=False, ts=rest.at, source=PriceSource.REST.value)
        return replace(published, price=rest.price, ts=rest.at, source=PriceSource.REST.value)

    async def _no_quote(self, t: Tick, sym: str, q: Any, limit: float, why: str) -> None:
        every = self.rt.cfg.monitor_event_every_s
        seen = _published(q, t.now, limit)
        if self._last_no_quote is not None and (t.now - self._last_no_quote).total_seconds() < every:
            logger.debug("{}: still no price fit to judge (published {}, REST {})", sym, seen["age"], why)
            return
        self._last_no_quote = t.now
        async with self.rt.pool.connection() as conn:
            await ops.emit(conn, "QuoteUnavailable",
                           f"{sym}: published quote {seen['age']} (limit {limit:.0f}s) and no REST quote ({why}); "
                           f"no exit decision until a price is fit to judge", level="WARN", symbol=sym,
                           worker_id=self.worker_id, market_ts=t.now, stale_quote=seen, error=why)

    async def _poll_exit(self, t: Tick) -> bool:
        """True when no exit is in flight any more (the step may decide again)."""
        pend = self.pending
        assert pend is not None
        async with self.rt.pool.connection() as conn:
            o = await outcome(conn, pend.intent_id)
            if o.fate is Fate.FAILED:
                await ops.emit(conn, "OrderRejected",
                               f"exit {pend.symbol} failed: intent {o.intent_status}, order {o.order_status}: "
                               f"{o.reason}; still holding, will retry", level="WARN", symbol=pend.symbol,
                               worker_id=self.worker_id, intent_id=pend.intent_id, market_ts=t.now,
                               intent_status=o.intent_status, order_status=o.order_status, reason=o.reason)
                if pend.partial:
                    pos = await (await conn.execute(Q["position_row"], {"symbol": pend.symbol})).fetchone()
                    if pos is not None and pos["trip_first_fill_id"] is not None:
                        await conn.execute(Q["set_exit_stage"], {"symbol": pend.symbol,
                                                                 "trip": pos["trip_first_fill_id"], "stage": 0})
                self.pending = None
                self._retry_after = monotonic() + self.rt.cfg.liquidation_retry_s
                return False
        if o.fate is Fate.DONE:
            self.pending = None
            return True
        elapsed = monotonic() - pend.started
        if elapsed > self.rt.cfg.intent_timeout_s and monotonic() - pend.warned > self.rt.cfg.intent_timeout_s:
            pend.warned = monotonic()
            logger.warning("exit intent {} ({}) still {} / order {} filled {}/{} after {:.0f}s", pend.intent_id,
                           pend.symbol, o.intent_status, o.order_status, o.filled_qty, o.qty, elapsed)
        return False

    async def _monitoring(self, t: Tick, sym: str, inputs: dict[str, Any]) -> None:
        every = self.rt.cfg.monitor_event_every_s
        if self._last_monitor is not None and (t.now - self._last_monitor).total_seconds() < every:
            logger.debug("monitor {}: no exit rule triggered {}", sym, inputs)
            return
        self._last_monitor = t.now
        async with self.rt.pool.connection() as conn:
            await ops.emit(conn, "Monitoring",
                           f"{sym}: no exit rule triggered (gain {inputs.get('gain_pct')}%, "
                           f"from high {inputs.get('from_high_pct')}%, held {inputs.get('held_s')}s)",
                           symbol=sym, worker_id=self.worker_id, market_ts=t.now,
                           rules=["STOP_LOSS", "TRAILING_STOP", "TAKE_PROFIT", "TREND_BREAK", "TIME_EXIT"], **inputs)
