"""The Strategy process: N workers plus the process-wide loops that serve them.

Loops (each paced by the service clock, with a wall-time floor, and stopped by ``stopping``):
scanner (one universe scan for all workers), heartbeat (workers' rows and their locks), reaper
(stale workers of any process: EXIT, locks reclaimed), book (positions from fills, re-entry
arming), liquidator (forced liquidation, flatten, the close), feed guard (REDUCING while PriceSync's
heartbeat is stale).  Several Strategy processes may run at once; everything they share is
coordinated in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from loguru import logger

from stock_manager.services.strategy import book, ops
from stock_manager.services.strategy.calendar import CalendarKeeper
from stock_manager.services.strategy.config import StrategyConfig
from stock_manager.services.strategy.drift import DriftGuard
from stock_manager.services.strategy.feed import FeedGuard
from stock_manager.services.strategy.liquidation import Liquidator
from stock_manager.services.strategy.loading import load_strategy
from stock_manager.services.strategy.port import Strategy
from stock_manager.services.strategy.queries import Q
from stock_manager.services.strategy.quotes import QuoteSource
from stock_manager.services.strategy.recovery import Recovery, recover
from stock_manager.services.strategy.runtime import Runtime, pace, trading_state
from stock_manager.services.strategy.scanner import ScanError, Scanner
from stock_manager.services.strategy.workers import Worker
from stock_manager.shared.clock import Clock, kst
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.market_rules import Phase, phase_at


class StrategyApp:
    def __init__(self, pool: Pool, clock: Clock, cfg: StrategyConfig, instance_id: str,
                 stopping: asyncio.Event | None = None, quotes: QuoteSource | None = None,
                 strategy: Strategy | None = None) -> None:
        self.rt = Runtime(pool, clock, cfg, instance_id, strategy or load_strategy(cfg.strategy),
                          stopping or asyncio.Event())
        if quotes is not None:
            self.rt.quotes = quotes
        self.feed = FeedGuard(self.rt)
        self.scanner = Scanner(self.rt)
        self.liquidator = Liquidator(self.rt)
        self.drift = DriftGuard(self.rt)
        self.calendar = CalendarKeeper(self.rt)
        self.workers: list[Worker] = []
        self.recovery: Recovery | None = None
        self._spawned = 0

    # --- start and stop ------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.rt.cfg
        await self.calendar.refresh()  # before anything asks phase_at
        logger.info("strategy settings loaded: {} workers, strategy {} ({}), risk {}", cfg.workers,
                    self.rt.strategy_version, type(self.rt.strategy).__qualname__, cfg.risk_defaults())
        async with self.rt.pool.connection() as conn:
            pv = await self.rt.params(conn)
            await ops.emit(conn, "StrategyConfigured",
                           f"risk defaults {cfg.risk_defaults()}; params {pv.version}", market_ts=self.rt.now(),
                           workers=cfg.workers, params_version=pv.version, strategy_version=pv.strategy_version,
                           strategy=self.rt.strategy.name, strategy_spec=cfg.strategy or "breakout",
                           risk=cfg.risk_defaults(), params=pv.params.as_json(), pid=os.getpid())
        logger.info("strategy params {}: {}", pv.version, pv.params.as_json())
        self.recovery = await recover(self.rt)
        for _ in range(cfg.workers):
            await self._spawn()

    async def _spawn(self) -> Worker:
        self._spawned += 1
        w = Worker(self.rt, self._spawned, self.scanner)
        await w.register()
        self.workers.append(w)
        return w

    async def stop(self) -> None:
        for w in self.workers:
            with contextlib.suppress(Exception):
                await w.shutdown()

    async def run(self) -> None:
        """Run until ``stopping`` is set; then stop the workers cleanly (EXIT, locks released)."""
        await self.start()
        loops: list[Callable[[], Coroutine[Any, Any, None]]] = [
            self._scan_loop, self._heartbeat_loop, self._reaper_loop, self._book_loop, self._liquidation_loop,
            self._workers_loop, self._feed_loop, self._calendar_loop]
        tasks = [asyncio.create_task(f(), name=f.__name__) for f in loops]
        try:
            await self.rt.stopping.wait()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await self.stop()

    # --- loops ---------------------------------------------------------------------------------

    async def _guard(self, name: str, body: Callable[[], Awaitable[object]]) -> None:
        try:
            await body()
        except asyncio.CancelledError:
            raise
        except ScanError:
            pass  # logged by the retry; the workers stay in SCAN until the next poll
        except Exception as e:
            logger.opt(exception=e).error("{} failed: {}: {}", name, type(e).__name__, e)

    async def _workers_loop(self) -> None:
        """Runs the workers; replaces one that was lost (declared dead while this process lives)."""
        running = {w.worker_id: asyncio.create_task(w.run(), name=w.worker_id) for w in self.workers}
        try:
            while not self.rt.stopping.is_set():
                for wid, task in list(running.items()):
                    if task.done():
                        del running[wid]
                        w = await self._spawn()
                        running[w.worker_id] = asyncio.create_task(w.run(), name=w.worker_id)
                await pace(self.rt, self.rt.cfg.heartbeat_s)
        finally:
            for task in running.values():
                task.cancel()
            for task in running.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.workers = [w for w in self.workers if not w.lost]

    async def scan_if_due(self) -> bool:
        now = self.rt.now()
        if phase_at(now) is not Phase.CONTINUOUS:
            return False
        async with self.rt.pool.connection() as conn:
            state, _ = await trading_state(conn)
            pv = await self.rt.params(conn)
        local = kst(now).time()
        if state != "ACTIVE" or not (pv.params.entry_start <= local < pv.params.entry_end):
            return False
        await self.scanner.run_once()
        return True

    async def _scan_loop(self) -> None:
        while not self.rt.stopping.is_set():
            await self._guard("scan", self.scan_if_due)
            await pace(self.rt, self.rt.cfg.scan_interval_s)

    async def heartbeat(self) -> None:
        ids = [w.worker_id for w in self.workers if not w.lost and w.registered]
        if not ids:
            return
        async with self.rt.pool.connection() as conn:
            beat = await (await conn.execute(Q["heartbeat_workers"], {"ids": ids})).fetchall()
            alive = {r["worker_id"] for r in beat}
            await conn.execute(Q["renew_locks"], {"ids": ids})
        for w in self.workers:
            if w.worker_id in ids and w.worker_id not in alive and not w.lost:
                w.lost = True
                logger.error("worker {} pid {} was declared dead (EXIT) by a reaper; replacing it", w.worker_id,
                             w.pid)

    async def _heartbeat_loop(self) -> None:
        while not self.rt.stopping.is_set():
            await self._guard("heartbeat", self.heartbeat)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.stopping.wait(), self.rt.cfg.heartbeat_s)

    async def _feed_loop(self) -> None:
        while not self.rt.stopping.is_set():
            await self._guard("feed guard", self.feed.round)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.stopping.wait(), self.rt.cfg.heartbeat_s)

    async def _calendar_loop(self) -> None:
        while not self.rt.stopping.is_set():
            await pace(self.rt, self.calendar.reload_s)
            await self._guard("calendar", self.calendar.refresh)

    async def reap(self) -> int:
        """Declare workers with a stale heartbeat dead, reclaim their locks (SC-009)."""
        now = self.rt.now()
        async with self.rt.pool.connection() as conn:
            rows = await (await conn.execute(Q["reap_stale_workers"], {
                "ttl_s": self.rt.cfg.worker_ttl_s, "reaper": self.rt.instance_id, "market_ts": now})).fetchall()
            for r in rows:
                await ops.emit(conn, "WorkerFailed",
                               f"worker {r['worker_id']} heartbeat stale (> {self.rt.cfg.worker_ttl_s}s): was "
                               f"{r['from_status']} on {r['current_symbol'] or '-'}, now EXIT; "
                               f"{len(r['released'])} locks reclaimed",
                               level="ERROR", worker_id=r["worker_id"], symbol=r["current_symbol"], market_ts=now,
                               from_status=r["from_status"], released=r["released"], reaper=self.rt.instance_id)
                for lk in r["released"]:
                    await ops.emit(conn, "LockReleased",
                                   f"lock {lk['symbol']} of dead worker {r['worker_id']} reclaimed",
                                   symbol=lk["symbol"], worker_id=r["worker_id"], market_ts=now,
                                   locked_ts=lk["locked_ts"], reason="worker heartbeat stale")
        return len(rows)

    async def _reaper_loop(self) -> None:
        while not self.rt.stopping.is_set():
            await self._guard("reaper", self.reap)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.stopping.wait(), self.rt.cfg.heartbeat_s)

    async def book_round(self) -> None:
        now = self.rt.now()
        async with self.rt.pool.connection() as conn:
            pv = await self.rt.params(conn)
            await book.sync_positions(conn, reentry_cooldown_min=pv.params.reentry_cooldown_min, market_ts=now)
            for r in await (await conn.execute(Q["arm_reentry"], {"now": now})).fetchall():
                logger.info("re-entry armed for {} (cooldown over)", r["symbol"])

    async def _book_loop(self) -> None:
        while not self.rt.stopping.is_set():
            await self._guard("book", self.book_round)
            await self._guard("drift", self.drift.round)
            await pace(self.rt, self.rt.cfg.monitor_interval_s)

    async def _liquidation_loop(self) -> None:
        while not self.rt.stopping.is_set():
            await self._guard("liquidation", self.liquidator.round)
            await self._guard("close", self.liquidator.close_round)
            await pace(self.rt, self.rt.cfg.monitor_interval_s)
