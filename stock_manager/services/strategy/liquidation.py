"""Forced liquidation at the close, flatten on request, and the close of the day.

The close is done as the auction works (docs/strategies.md, "The close"; the rules are in
``rules/liquidation.py``).  Each position starts between ``liquidation_lead_min`` and
``liquidation_last_lead_min`` minutes before 15:30, the least liquid first, with a conditional
limit (ORD_DVSN 02) priced into the bid, which rests through the closing auction as a market
order.  A sell that sits unfilled is cancelled and re-priced only until shortly before 15:20, and
never while the symbol is in a VI's auction (it rests there and sells at the uncross); from
then until the uncross nothing is cancelled, re-sent or newly sent.  What the uncross leaves is sold in the
post-close session at the closing price (06), then in the after-hours single-price session (07) at
the lowest price it allows; paper KIS has neither, so there the position stays open and a WARN
says so.  Each stage re-sends at most ``liquidation_max_retries`` times, then reports
(LiquidationIncomplete, EC-003).  ``trading_state = REDUCING`` with a reason starting ``FLATTEN``
sells everything at any time of day: with market orders before the close window, as above in it.

The day closes once: when the book is flat after the uncross, or when no session is left to sell
in (paper: after the uncross; real: at 18:00).  Then every lock is released and the day's summary
written, with what the thin books cost against the price when their liquidation began.

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

from stock_manager.services.strategy import book, locks, ops
from stock_manager.services.strategy.intents import (
    IntentSpec,
    exit_key_prefix,
    open_sell_qty,
    request_cancel,
    sells_written,
    write_intent,
)
from stock_manager.services.strategy.queries import Q
from stock_manager.services.strategy.quotes import QuoteUnavailable
from stock_manager.services.strategy.rules.exits import FORCED_REASONS, ExitReason
from stock_manager.services.strategy.rules.liquidation import (
    AFTER_CLOSE_STAGES,
    NEXT_STAGE,
    STAGE_TYPES,
    LiquidityView,
    Stage,
    Step,
    Verdict,
    after_hours_price,
    closing_limit,
    day_over,
    flatten_requested,
    in_liquidation_window,
    least_liquid_first,
    may_cancel,
    remainder,
    session_of,
    start_times,
    step_at,
    uncross_settled,
    verdict,
)
from stock_manager.services.strategy.rules.scan import spread_pct
from stock_manager.services.strategy.runtime import Runtime, trading_state
from stock_manager.shared.clock import kst
from stock_manager.shared.kis.errors import KisError
from stock_manager.shared.locks import Lock, lock_params
from stock_manager.shared.market_rules import Market, Phase, phase_at, trade_date
from stock_manager.shared.market_status import IN_VI
from stock_manager.shared.trade_states import STATUS_SETS, OrderType

LIQUIDATOR_LOCK = "SELECT pg_try_advisory_xact_lock(%(lock_class)s, %(lock_key)s) AS got"


def _market(name: str | None) -> Market:
    try:
        return Market(name or "KOSPI")
    except ValueError:
        return Market.KOSPI


@dataclass
class Liquidator:
    rt: Runtime
    closed_days: set[date] = field(default_factory=set)
    noted: set[tuple[str, int, str, str]] = field(default_factory=set)  # (symbol, trip, stage, what)

    async def round(self) -> int:
        """One liquidation round; returns the number of sell intents written."""
        now = self.rt.now()
        cfg = self.rt.cfg
        async with self.rt.pool.connection() as conn:
            state, reason = await trading_state(conn)
            flatten = flatten_requested(state, reason)
            after = phase_at(now) in (Phase.POST_CLOSE, Phase.AFTER_HOURS) and cfg.after_hours
            if not (flatten or after or in_liquidation_window(now, cfg.liquidation_lead_min)):
                return 0
            pv = await self.rt.params(conn)
            await book.sync_positions(conn, reentry_cooldown_min=pv.params.reentry_cooldown_min, market_ts=now)
        why = ExitReason.FLATTEN if flatten else ExitReason.FORCED_LIQUIDATION
        written = 0
        async with self.rt.pool.connection() as conn:
            got = await (await conn.execute(LIQUIDATOR_LOCK, lock_params(Lock.LIQUIDATOR))).fetchone()
            if not got or not got["got"]:
                return 0
            rows = {r["symbol"]: r for r in await (await conn.execute(Q["liquidation_book"], {"now": now})).fetchall()}
            views = least_liquid_first([LiquidityView(s, int(r["qty"]), r["turnover"], spread_pct(r["bid"], r["ask"]))
                                        for s, r in rows.items()])
            starts = start_times(views, cfg.liquidation_lead_min, cfg.liquidation_last_lead_min, session_of(now))
            for rank, v in enumerate(views, 1):
                step = step_at(now, starts[v.symbol], flatten=flatten, after_hours=cfg.after_hours,
                               lead_min=cfg.liquidation_lead_min, cancel_guard_s=cfg.liquidation_cancel_guard_s)
                if step is None:
                    continue
                written += await self._sell(conn, why, rows[v.symbol], v, step, rank, len(views), pv.version,
                                            pv.strategy_version)
        return written

    async def _confirmed(self, conn: AsyncConnection[Any], sym: str, trip: int, step: Step) -> bool:
        """After the close, size a sell only on a holding the broker has confirmed since the stage
        began.  The orders of the session before are dead by then, so they no longer cover shares,
        but what they filled last (the closing uncross, the post-close session's final trades) may
        still be on its way to our fills: sold on our count alone, a share the uncross already sold
        would be offered again.  Execution's position check since ``step.since`` that does not list
        the symbol among its differences says our count is the broker's."""
        row = await (await conn.execute(Q["holding_confirmed"], {"symbol": sym, "since": step.since})).fetchone()
        if row is not None and row["agrees"]:
            return True
        if self._once(sym, trip, step, "unconfirmed"):
            logger.info("liquidation {}: waiting for the broker's holdings since {:%H:%M:%S} to agree with ours "
                        "before selling in {}", sym, kst(step.since), step.stage)
        return False

    def _once(self, sym: str, trip: int, step: Step, what: str) -> bool:
        key = (sym, trip, step.stage.value, what)
        if key in self.noted:
            return False
        self.noted.add(key)
        return True

    async def _sell(self, conn: AsyncConnection[Any], why: ExitReason, r: dict[str, Any], v: LiquidityView,
                    step: Step, rank: int, total: int, params_version: str, strategy_version: str) -> int:
        now = self.rt.now()
        cfg = self.rt.cfg
        sym = v.symbol
        trip = int(r["trip_first_fill_id"])
        types = STAGE_TYPES[step.stage]
        attempts = await sells_written(conn, sym, trip, types=types, reasons=FORCED_REASONS, since=step.since)
        if r["vi"] in IN_VI and may_cancel(step, attempts, cfg.liquidation_max_retries) and self._once(
                sym, trip, step, f"vi:{r['vi']}"):
            logger.warning("liquidation {}: in a VI auction ({}); what rests in it is left to its uncross, not "
                           "cancelled and re-priced", sym, r["vi"])
        if may_cancel(step, attempts, cfg.liquidation_max_retries, vi=r["vi"]):
            for o in await (await conn.execute(Q["stuck_sell_orders"], {**STATUS_SETS, "symbol": sym})).fetchall():
                if float(o["age_s"] or 0) >= cfg.liquidation_retry_s:
                    logger.warning("liquidation {}: order {} {} filled {}/{} for {:.0f}s; cancelling the rest to "
                                   "re-price it", sym, o["order_id"], o["status"], o["filled_qty"], o["qty"],
                                   o["age_s"])
                    await request_cancel(conn, order_id=int(o["order_id"]), intent_id=o["intent_id"], symbol=sym,
                                         reason="liquidation: unfilled, re-price", by="liquidator", market_ts=now)
        rest = remainder(v.qty, await open_sell_qty(conn, sym, types=types))
        what = verdict(step, rest, attempts, cfg.liquidation_max_retries)
        if what is Verdict.NONE:
            return 0
        if (what is Verdict.SEND and step.stage in AFTER_CLOSE_STAGES
                and not await self._confirmed(conn, sym, trip, step)):
            return 0
        if what is Verdict.DEFER:
            if self._once(sym, trip, step, "defer"):
                logger.warning("liquidation {}: {} of {} unsold, and nothing is re-sent from just before the closing "
                               "auction until its uncross; {}", sym, rest, v.qty, self._next(step))
            return 0
        if what is Verdict.CAPPED:
            if self._once(sym, trip, step, "capped"):
                await ops.emit(conn, "LiquidationIncomplete",
                               f"{sym}: {rest} of {v.qty} still unsold after {attempts} attempts in {step.stage} "
                               f"(thin liquidity); {self._next(step)}", level="WARN", symbol=sym, market_ts=now,
                               remaining=rest, qty=v.qty, attempts=attempts, stage=step.stage, turnover=v.turnover,
                               next=self._next_stage(step))
            return 0
        order = await self._order(conn, step, r, sym)
        if order is None:
            return 0
        order_type, limit, ref = order
        if attempts > 0:
            logger.warning("liquidation {}: retry {} in {} for the remaining {} of {}", sym, attempts, step.stage,
                           rest, v.qty)
        n = await sells_written(conn, sym, trip)
        await write_intent(conn, IntentSpec(
            action_key=f"{exit_key_prefix(sym, trip)}{n}", symbol=sym, side="SELL", intent_type="EXIT_FULL",
            qty=rest, order_type=order_type, limit_price=Decimal(limit) if limit is not None else None,
            reason=why.value, worker_id=r["worker_id"], strategy_version=strategy_version,
            params_version=params_version, ref_price=ref,
            context={"rank": rank, "of": total, "turnover": v.turnover, "spread_pct": v.spread_pct,
                     "stage": step.stage, "attempt": attempts}), now)
        price = f" @{limit}" if limit is not None else ""
        await ops.emit(conn, "MandatoryLiquidation",
                       f"{why.value}: sell {sym} x{rest} {order_type}{price} in {step.stage} ({rank}/{total}, "
                       f"least liquid first, attempt {attempts + 1})", level="WARN", symbol=sym,
                       worker_id=r["worker_id"], market_ts=now, qty=rest, held=v.qty, rank=rank, of=total,
                       turnover=v.turnover, attempt=attempts + 1, reason=why.value, stage=step.stage,
                       order_type=order_type, limit_price=limit)
        return 1

    async def _order(self, conn: AsyncConnection[Any], step: Step, r: dict[str, Any],
                     sym: str) -> tuple[OrderType, int | None, Decimal | None] | None:
        """The order type, limit price and reference price of the stage's sell; None: not now."""
        now = self.rt.now()
        market = _market(r["market"])
        lower = int(r["lower_limit"]) if r["lower_limit"] is not None else None
        seen = r["bid"] or r["price"]
        ref = Decimal(seen) if seen is not None else None
        if step.order_type is OrderType.CLMT:
            limit = closing_limit(r["bid"], r["price"], lower, market, self.rt.cfg.liquidation_limit_ticks)
            if limit is not None:
                return OrderType.CLMT, limit, ref
            return OrderType.MKT, None, ref  # nothing to price from (no price, no limits): still before 15:20
        if step.order_type is OrderType.MKT:
            return OrderType.MKT, None, ref
        session = session_of(now)
        if session is None:
            return None
        close = (await (await conn.execute(Q["closing_price"], {
            "symbol": sym, "trade_date": session.day, "closing_call": session.at(session.closing_auction_start),
            "post_close": session.at(session.post_close_start)})).fetchone() or {}).get("close")
        if step.order_type is OrderType.CLOSE:
            return OrderType.CLOSE, None, Decimal(close) if close is not None else ref
        if step.order_type is OrderType.AHS:
            if close is None:
                close = await self._broker_close(sym)
            if close is None:
                if self._once(sym, int(r["trip_first_fill_id"]), step, "no-close"):
                    logger.warning("liquidation {}: no closing price known (no 06 fill, no bar, no broker quote), so "
                                   "no after-hours price; waiting", sym)
                return None
            base = int(r["base_price"]) if r["base_price"] is not None else None
            return OrderType.AHS, after_hours_price(Decimal(close), base, market), Decimal(close)
        return None

    async def _broker_close(self, sym: str) -> Decimal | None:
        """The day's close as the broker quotes it: after the regular session, inquire-price's price
        is its close (after-hours trades have fields of their own).  A thin name PriceSync never
        streamed has no 1-minute bar to read it from."""
        try:
            return await self.rt.quotes.price(sym)
        except (QuoteUnavailable, KisError) as e:
            logger.info("liquidation {}: the broker quoted no close: {}", sym, e)
            return None

    def _next_stage(self, step: Step) -> str:
        nxt = NEXT_STAGE[step.stage]
        if nxt in (Stage.POST_CLOSE, Stage.AFTER_HOURS) and not self.rt.cfg.after_hours:
            return "NEXT_SESSION"
        return nxt.value if nxt is not None else "NEXT_SESSION"

    def _next(self, step: Step) -> str:
        return {
            "CLOSING": "the rest waits for the close window",
            "POST_CLOSE": "the rest goes to the post-close session at the closing price (ORD_DVSN 06)",
            "AFTER_HOURS": "the rest goes to the after-hours single-price session (ORD_DVSN 07)",
            "NEXT_SESSION": "the rest stays open until the next session"
                            + ("" if self.rt.cfg.after_hours else " (paper KIS takes no ORD_DVSN 06/07)"),
        }[self._next_stage(step)]

    async def close_round(self) -> bool:
        """Close the day once per trade date: locks released, what stays open reported, the summary
        written.  Runs when the book is flat after the uncross or no session is left to sell in."""
        now = self.rt.now()
        d = trade_date(now)
        session = session_of(now)
        if d in self.closed_days or session is None or kst(now).time() < uncross_settled(session):
            return False
        async with self.rt.pool.connection() as conn:
            got = await (await conn.execute(LIQUIDATOR_LOCK, lock_params(Lock.LIQUIDATOR))).fetchone()
            if not got or not got["got"]:
                return False
            closed = await (await conn.execute(Q["day_closed"], {"trade_date": d.isoformat()})).fetchone()
            if closed is not None and closed["closed"]:
                self.closed_days.add(d)
                return False
            pv = await self.rt.params(conn)
            await book.sync_positions(conn, reentry_cooldown_min=pv.params.reentry_cooldown_min, market_ts=now)
            left = await (await conn.execute(Q["open_book"])).fetchall()
            if not day_over(now, after_hours=self.rt.cfg.after_hours, flat=not left):
                return False
            for r in left:
                paper = "" if self.rt.cfg.after_hours else " (paper KIS takes no post-close or after-hours orders)"
                await ops.emit(conn, "LiquidationIncomplete",
                               f"{r['symbol']}: {r['qty']} unsold at the end of the day{paper}; the position stays "
                               f"open until the next session", level="WARN", symbol=r["symbol"], market_ts=now,
                               remaining=r["qty"], qty=r["qty"], stage="DAY_END", next="NEXT_SESSION")
            n = await locks.release_all(conn, "market close", now)
            await conn.execute(Q["expire_reentry"], {"before": now})
            s = await book.write_daily_summary(conn, d)
            liq = s.notes.get("liquidation", {})
            await ops.emit(conn, "DailySummary",
                           f"{d}: pnl {s.realized_pnl}, {s.trades_count} trades, {s.wins} wins, {s.losses} losses, "
                           f"{len(left)} positions left open, {n} locks released; liquidation cost "
                           f"{liq.get('cost_won', 0)} won", market_ts=now, trade_date=d,
                           realized_pnl=s.realized_pnl, trades_count=s.trades_count, wins=s.wins, losses=s.losses,
                           win_rate=s.win_rate, profit_factor=s.profit_factor, max_drawdown=s.max_drawdown,
                           left_open=[r["symbol"] for r in left],
                           liquidation_cost_won=liq.get("cost_won"), thin_liquidity=liq.get("thin_symbols", []))
        self.closed_days.add(d)
        return True
