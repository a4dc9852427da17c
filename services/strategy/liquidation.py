"""Forced liquidation before the close, flatten on request, and the close itself.

From T-Δ before 15:30 (default 15 minutes, by the service clock) every position is sold with
market orders, least liquid first because thin books need the most time.  Each round sells what is
not already on its way; an order that sits unfilled past the retry interval gets a cancel request,
and when it is gone the remainder goes out again under a new action_key, until the book is flat
(SC-008, EC-003).  ``trading_state = REDUCING`` with a reason starting ``FLATTEN`` does the same at
any time of day.  At the close every lock is released and the day's summary written.

Only one process runs a round at a time (a transaction-scoped advisory try-lock); the sell
action_keys are shared with the workers', so even a race can write each sale only once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from loguru import logger
from psycopg import AsyncConnection

from services.strategy import book, locks, ops
from services.strategy.intents import (
    IntentSpec,
    exit_key_prefix,
    open_sell_qty,
    request_cancel,
    sells_written,
    write_intent,
)
from services.strategy.queries import Q
from services.strategy.rules.exits import ExitReason
from services.strategy.rules.liquidation import (
    LiquidityView,
    after_close,
    flatten_requested,
    in_liquidation_window,
    least_liquid_first,
    remainder,
)
from services.strategy.rules.scan import spread_pct
from services.strategy.runtime import Runtime, trading_state
from shared.clock import kst
from shared.market_rules import trade_date

LIQUIDATOR_LOCK = "SELECT pg_try_advisory_xact_lock(7365301, 3) AS got"


@dataclass
class Liquidator:
    rt: Runtime
    closed_days: set[date] = field(default_factory=set)
    incomplete_noted: set[tuple[str, int]] = field(default_factory=set)

    async def active_reason(self, conn: AsyncConnection[Any]) -> ExitReason | None:
        state, reason = await trading_state(conn)
        if flatten_requested(state, reason):
            return ExitReason.FLATTEN
        if in_liquidation_window(self.rt.now(), self.rt.cfg.liquidation_lead_min):
            return ExitReason.FORCED_LIQUIDATION
        return None

    async def round(self) -> int:
        """One liquidation round; returns the number of sell intents written."""
        now = self.rt.now()
        async with self.rt.pool.connection() as conn:
            why = await self.active_reason(conn)
            if why is None:
                return 0
            pv = await self.rt.params(conn)
            await book.sync_positions(conn, reentry_cooldown_min=pv.params.reentry_cooldown_min, market_ts=now)
        written = 0
        async with self.rt.pool.connection() as conn:
            got = await (await conn.execute(LIQUIDATOR_LOCK)).fetchone()
            if not got or not got["got"]:
                return 0
            rows = {r["symbol"]: r for r in await (await conn.execute(Q["open_book"])).fetchall()}
            views = least_liquid_first([LiquidityView(s, int(r["qty"]), r["turnover"], spread_pct(r["bid"], r["ask"]))
                                        for s, r in rows.items()])
            for rank, v in enumerate(views, 1):
                written += await self._sell(conn, why, rows[v.symbol], v, rank, len(views), pv.version,
                                            pv.strategy_version)
        return written

    async def _sell(self, conn: AsyncConnection[Any], why: ExitReason, r: dict[str, Any], v: LiquidityView,
                    rank: int, total: int, params_version: str, strategy_version: str) -> int:
        now = self.rt.now()
        sym = v.symbol
        for o in await (await conn.execute(Q["stuck_sell_orders"], {"symbol": sym})).fetchall():
            if float(o["age_s"] or 0) >= self.rt.cfg.liquidation_retry_s:
                logger.warning("liquidation {}: order {} {} filled {}/{} for {:.0f}s; cancelling the rest to retry",
                               sym, o["order_id"], o["status"], o["filled_qty"], o["qty"], o["age_s"])
                await request_cancel(conn, order_id=int(o["order_id"]), intent_id=o["intent_id"], symbol=sym,
                                     reason="liquidation: unfilled, retry", by="liquidator", market_ts=now)
        covered = await open_sell_qty(conn, sym)
        rest = remainder(v.qty, covered)
        if rest <= 0:
            return 0
        trip = int(r["trip_first_fill_id"])
        n = await sells_written(conn, sym, trip)
        if n >= self.rt.cfg.liquidation_max_retries and (sym, trip) not in self.incomplete_noted:
            self.incomplete_noted.add((sym, trip))
            await ops.emit(conn, "LiquidationIncomplete",
                           f"{sym}: {rest} of {v.qty} still unsold after {n} attempts (thin liquidity); retrying",
                           level="WARN", symbol=sym, market_ts=now, remaining=rest, qty=v.qty, attempts=n,
                           turnover=v.turnover)
        elif n > 0:
            logger.warning("liquidation {}: retry {} for the remaining {} of {}", sym, n, rest, v.qty)
        price = r["bid"] or r["price"]
        await write_intent(conn, IntentSpec(
            action_key=f"{exit_key_prefix(sym, trip)}{n}", symbol=sym, side="SELL", intent_type="EXIT_FULL",
            qty=rest, order_type="MKT", limit_price=None, reason=why.value, worker_id=r["worker_id"],
            strategy_version=strategy_version, params_version=params_version,
            ref_price=Decimal(price) if price else None,
            context={"rank": rank, "of": total, "turnover": v.turnover, "spread_pct": v.spread_pct, "attempt": n}),
            now)
        await ops.emit(conn, "MandatoryLiquidation",
                       f"{why.value}: sell {sym} x{rest} at market ({rank}/{total}, least liquid first, "
                       f"attempt {n + 1})", level="WARN", symbol=sym, worker_id=r["worker_id"], market_ts=now,
                       qty=rest, held=v.qty, rank=rank, of=total, turnover=v.turnover, attempt=n + 1,
                       reason=why.value)
        return 1

    async def close_round(self) -> bool:
        """At the close: release every lock and write the day's summary, once per trade date."""
        now = self.rt.now()
        d = trade_date(now)
        if not after_close(now) or d in self.closed_days or kst(now).weekday() >= 5:
            return False
        async with self.rt.pool.connection() as conn:
            pv = await self.rt.params(conn)
            await book.sync_positions(conn, reentry_cooldown_min=pv.params.reentry_cooldown_min, market_ts=now)
            n = await locks.release_all(conn, "market close", now)
            await conn.execute(Q["expire_reentry"], {"before": now})
            left = await (await conn.execute(Q["open_book"])).fetchall()
            s = await book.write_daily_summary(conn, d)
            await ops.emit(conn, "DailySummary",
                           f"{d}: pnl {s.realized_pnl}, {s.trades_count} trades, {s.wins} wins, {s.losses} losses, "
                           f"{len(left)} positions left open, {n} locks released",
                           market_ts=now, trade_date=d, realized_pnl=s.realized_pnl, trades_count=s.trades_count,
                           wins=s.wins, losses=s.losses, win_rate=s.win_rate, left_open=[r["symbol"] for r in left])
        self.closed_days.add(d)
        return True
