"""Brings our orders and fills in line with the broker, which always wins.

One Execution at a time reconciles (a lease row).  Every 10-30 s, or every 5 s while the notice
stream is down, it lists the day's orders at the broker (inquire-daily-ccld, newest first, back to
the oldest order still open here; the whole day on a process's first pass and every twentieth) and:
- resolves submissions in doubt: linked to the broker order that matches, or — only when the
  broker has no matching order — written ahead again and re-sent (never more than
  ``max_submit_attempts``), see ``rules.match_in_doubt``;
- for every open order, adds the fills the notices never reported (after a grace period, so a
  notice still on its way is not counted twice), moves the status to what the quantities say,
  and writes an ``ops.events`` row for every correction;
- resolves cancels/modifies in doubt, and refreshes the buying power the validator uses;
- records the broker's orders that are none of ours as MANUAL orders;
- compares the broker's holdings with the net of our fills (at start and every few passes):
  a difference that outlives a pass is DRIFT, an ERROR event on which Strategy halts trading.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from loguru import logger
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from stock_manager.services.execution.context import SERVICE, Exec, Q
from stock_manager.services.execution.costs import check_costs
from stock_manager.services.execution.funds import FundsView
from stock_manager.services.execution.notices import NoticeApplier
from stock_manager.services.execution.positions import PositionDiff, compare, describe, verdict
from stock_manager.services.execution.rules import (
    ORD_DVSN,
    BrokerOrder,
    Intent,
    PendingOrder,
    fill_costs,
    match_in_doubt,
    order_status,
)
from stock_manager.services.execution.submitter import Submitter, finish_intent_if_processing
from stock_manager.shared import events
from stock_manager.shared.clock import KST, kst
from stock_manager.shared.kis.errors import KisError
from stock_manager.shared.kis.models import DailyCcldRow, format_odno
from stock_manager.shared.kis.ports import Priority
from stock_manager.shared.market_rules import Market, trade_date
from stock_manager.shared.trade_states import (
    PRICED_ORDER_TYPES,
    STATUS_SETS,
    IntentStatus,
    OrderStatus,
    OrderType,
    PositionVerdict,
)

Conn = AsyncConnection[DictRow]
LEASE = "execution-reconciler"


class Reconciler:
    def __init__(self, ex: Exec, notices: NoticeApplier, submitter: Submitter, funds: FundsView) -> None:
        self.ex = ex
        self.notices = notices
        self.submitter = submitter
        self.funds = funds
        self.leader = False
        # symbols of broker orders this pass saw and could not link (nor record as manual yet)
        self._unlinked_symbols: set[str] = set()
        self._passes = 0

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            cadence = self.ex.cfg.reconcile_s
            try:
                self.leader = await self._take_lease()
                if self.leader:
                    await self.pass_once()
                    if not await self._notice_stream_up():
                        cadence = self.ex.cfg.reconcile_fast_s
            except KisError as e:
                logger.error("reconcile pass failed at the broker: {}", e)
            except Exception as e:
                logger.exception("reconcile pass failed: {}", type(e).__name__)
            self.ex.stats["leader"] = self.leader
            await self.ex.reconcile_now.wait(cadence)
        if self.leader:
            async with self.ex.pool.connection() as conn:
                await conn.execute(Q["drop_lease"], {"name": LEASE, "me": self.ex.owner})

    async def _take_lease(self) -> bool:
        async with self.ex.pool.connection() as conn:
            row = await (await conn.execute(Q["take_lease"], {"name": LEASE, "me": self.ex.owner,
                                                               "ttl_s": self.ex.cfg.lease_ttl_s})).fetchone()
        return row is not None

    async def _notice_stream_up(self) -> bool:
        async with self.ex.pool.connection() as conn:
            row = await (await conn.execute(Q["feed_status"])).fetchone()
        return bool(row and row["connected"] and row["notices_subscribed"] and row["age_s"] < 60)

    async def pass_once(self) -> dict[str, int]:
        """One reconciliation; returns counts of what it did (for tests and the heartbeat)."""
        ex = self.ex
        t0 = time.perf_counter()
        await self.notices.drain()
        await self._repair_intents()
        today = trade_date(ex.clock.now())
        dates = {today} | await self._pending_dates()
        done: dict[str, int] = {"resolved": 0, "resent": 0, "corrected": 0, "fills_added": 0}
        stream_up = await self._notice_stream_up()
        full = self._passes % ex.cfg.full_listing_every == 0
        self._unlinked_symbols = set()
        for day in sorted(dates):
            since = None if full else await self._listing_since(day)
            listed_before = await self._db_now()
            listing = [_padded(r) for r in
                       (await ex.broker.rest.inquire_daily_ccld(day, day, ordered_since=since)).rows]
            await self._resolve_in_doubt(day, listing, done)
            await self._sync_orders(day, listing, listed_before, stream_up, done)
            await self._resolve_amendments(day, listing)
            await self._record_manual(day, listing)
        if self._passes % ex.cfg.position_check_every == 0:
            await self.check_positions()
        self._passes += 1
        if self._passes % 4 == 1:
            await self.funds.sync()
        ex.stats["reconcile_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        ex.count("reconcile_passes")
        return done

    async def _listing_since(self, day: date) -> time_of_day | None:
        """The order time from which ``day``'s broker list is needed (None: all of it).

        Every order or amendment still waiting for the broker's word was attempted at or after
        the horizon; the broker cannot have received it earlier, so a list reaching back to the
        horizon (less a margin for clock differences) holds whatever became of it, and an order
        missing from it is truly absent.  With nothing open, the list reaches back two passes, for
        orders placed elsewhere.
        """
        ex = self.ex
        async with ex.pool.connection() as conn:
            row = await (await conn.execute(Q["listing_horizon"], {**STATUS_SETS, "trade_date": day})).fetchone()
        assert row is not None
        if row["unknown_attempt"]:
            return None
        speed = max(ex.clock.speed, 1.0)
        horizon = row["horizon"] or ex.clock.now() - timedelta(seconds=2 * ex.cfg.reconcile_s * speed)
        since = kst(horizon - timedelta(seconds=ex.cfg.listing_margin_s * speed))
        return since.time() if since.date() == day else None

    async def _db_now(self) -> datetime:
        """The database's clock, which stamps every order change (so no skew with ours)."""
        async with self.ex.pool.connection() as conn:
            row = await (await conn.execute(Q["db_now"])).fetchone()
        assert row is not None
        return row["now"]  # type: ignore[no-any-return]

    async def _pending_dates(self) -> set[date]:
        async with self.ex.pool.connection() as conn:
            rows = await (await conn.execute(Q["stale_pending"], self._stale_params())).fetchall()
            opens = await (await conn.execute(Q["working_order_dates"], STATUS_SETS)).fetchall()
        return {r["trade_date"] for r in rows} | {r["trade_date"] for r in opens}

    def _stale_params(self) -> dict[str, Any]:
        cfg = self.ex.cfg
        return {"grace_s": cfg.in_doubt_grace_s, "after_s": cfg.stale_pending_s, "dead_s": cfg.owner_dead_after_s}

    async def _repair_intents(self) -> None:
        """Intents a crash left behind: claimed but never written ahead, or with an untold outcome."""
        async with self.ex.pool.connection() as conn:
            await conn.execute(Q["reclaim_stale_intents"], {"stale_s": self.ex.cfg.stale_pending_s,
                                                            "dead_s": self.ex.cfg.owner_dead_after_s})
            for r in await (await conn.execute(Q["intents_without_outcome"], STATUS_SETS)).fetchall():
                status = {OrderStatus.REJECTED: IntentStatus.REJECTED,
                          OrderStatus.ERROR: IntentStatus.FAILED}.get(r["order_status"], IntentStatus.SUBMITTED)
                await finish_intent_if_processing(conn, str(r["intent_id"]), status, r["status_reason"])

    # --- in doubt -------------------------------------------------------------------------------------

    async def _resolve_in_doubt(self, day: date, listing: list[DailyCcldRow], done: dict[str, int]) -> None:
        ex = self.ex
        async with ex.pool.connection() as conn:
            stale = [r for r in await (await conn.execute(Q["stale_pending"], self._stale_params())).fetchall()
                     if r["trade_date"] == day and r["order_id"] not in ex.sending]
            if not stale:
                return
            young = await (await conn.execute(Q["young_pending"], {"after_s": ex.cfg.stale_pending_s})).fetchall()
            linked = {r["broker_order_no"] for r in await (await conn.execute(Q["linked_numbers"],
                                                                               {"trade_date": day})).fetchall()}
        busy = {_key_of(r) for r in young if r["order_id"] not in {s["order_id"] for s in stale}}
        busy |= {_key_of(r) for r in stale if r["order_id"] in ex.sending}
        pending = [_pending(r) for r in stale if _key_of(r) not in busy]
        unlinked = [_broker(r) for r in listing if r.odno not in linked]
        speed = max(ex.clock.speed, 1.0)
        matches = match_in_doubt(pending, unlinked, before=timedelta(seconds=5 * speed),
                                 after=timedelta(seconds=(60 + ex.cfg.stale_pending_s) * speed),
                                 margin=timedelta(seconds=ex.cfg.listing_margin_s * speed))
        by_odno = {r.odno: r for r in listing}
        for p in pending:
            found = matches.get(p.order_id)
            if found is not None:
                await self._link_found(p.order_id, by_odno[found.odno])
                done["resolved"] += 1
            else:
                if await self._absent(p.order_id):
                    done["resent"] += 1

    async def _link_found(self, order_id: int, row: DailyCcldRow) -> None:
        ex = self.ex
        async with ex.pool.connection() as conn:
            order = await (await conn.execute(Q["order_for_update"], {"order_id": order_id})).fetchone()
            if order is None or order["status"] not in (OrderStatus.PENDING_SUBMIT, OrderStatus.IN_DOUBT):
                return
            await conn.execute(Q["link_ack"], {"order_id": order_id, "odno": row.odno, "org_no": row.ord_gno_brno,
                                               "status": OrderStatus.SUBMITTED, "raw": None})
            await finish_intent_if_processing(conn, str(order["intent_id"]), IntentStatus.SUBMITTED, None)
            await events.emit(conn, SERVICE, "InDoubtResolved",
                              f"order {order_id} found at the broker as {row.odno}", level="WARN",
                              symbol=order["symbol"], intent_id=order["intent_id"], market_ts=ex.clock.now(),
                              order_id=order_id, broker_order_no=row.odno, outcome="found")
            await self.notices.apply_orphans(conn, order["trade_date"], row.odno)
        ex.count("in_doubt_found")

    async def _absent(self, order_id: int) -> bool:
        """The broker has no such order: send it again, or give up after the last attempt."""
        ex = self.ex
        # the slot first, so that the re-written order goes out the moment it is committed
        await ex.broker.limiter.prepay(Priority.ORDER)
        async with ex.pool.connection() as conn:
            order = await (await conn.execute(Q["order_for_update"], {"order_id": order_id})).fetchone()
            if order is None or order["status"] not in (OrderStatus.PENDING_SUBMIT, OrderStatus.IN_DOUBT):
                return False
            if order["status"] == OrderStatus.PENDING_SUBMIT:
                await conn.execute(Q["set_order_status"], {"order_id": order_id, "status": OrderStatus.IN_DOUBT,
                                                            "reason": "sender vanished", "raw": None})
            if int(order["submit_attempts"]) >= ex.cfg.max_submit_attempts:
                reason = f"absent at the broker after {order['submit_attempts']} attempts"
                await conn.execute(Q["set_order_status"], {"order_id": order_id, "status": OrderStatus.ERROR,
                                                            "reason": reason, "raw": None})
                await finish_intent_if_processing(conn, str(order["intent_id"]), IntentStatus.FAILED, reason)
                await events.emit(conn, SERVICE, "InDoubtResolved", f"order {order_id}: {reason}", level="ERROR",
                                  symbol=order["symbol"], intent_id=order["intent_id"], order_id=order_id,
                                  outcome="given_up")
                return False
            await conn.execute(Q["rewrite_ahead"], {"order_id": order_id, "market_ts": ex.clock.now(), "me": ex.owner})
            await events.emit(conn, SERVICE, "InDoubtResolved",
                              f"order {order_id} absent at the broker: sending again", level="WARN",
                              symbol=order["symbol"], intent_id=order["intent_id"], order_id=order_id,
                              outcome="absent", attempt=int(order["submit_attempts"]) + 1)
        intent = Intent(str(order["intent_id"]), "", order["symbol"], order["side"], "", int(order["qty"]),
                        order["order_type"], order["limit_price"])
        await self.submitter.send(order_id, intent, time.monotonic())
        ex.count("in_doubt_resent")
        return True

    # --- open orders ------------------------------------------------------------------------------------

    async def _sync_orders(self, day: date, listing: list[DailyCcldRow], listed_before: datetime, stream_up: bool,
                           done: dict[str, int]) -> None:
        """Bring each linked order in line with the broker's list, which was asked for after
        ``listed_before``; orders changed since are left to the next pass."""
        ex = self.ex
        by_odno = {r.odno: r for r in listing}
        async with ex.pool.connection() as conn:
            ours = await (await conn.execute(Q["orders_of_day"], {"trade_date": day,
                                                                  "listed_before": listed_before})).fetchall()
            chains = await self._modify_chains(conn, [o["order_id"] for o in ours])
        for o in ours:
            rows = [by_odno[n] for n in [o["broker_order_no"], *chains.get(o["order_id"], [])] if n in by_odno]
            if not rows:
                if o["status"] in (OrderStatus.SUBMITTED, OrderStatus.PARTIAL):
                    logger.warning("order {} ({}) is not in the broker's list", o["order_id"], o["broker_order_no"])
                continue
            b_filled = sum(r.tot_ccld_qty for r in rows)
            b_amount = Decimal(sum(r.tot_ccld_amt for r in rows))
            b_cancel = sum(r.cncl_cfrm_qty for r in rows)
            rejected = any(r.rjct_qty > 0 for r in rows) and b_filled == 0
            if (b_filled == int(o["filled_qty"]) and b_cancel == int(o["cancelled_qty"])
                    and o["fills_missing_since"] is None
                    and order_status(int(o["qty"]), b_filled, b_cancel, rejected) == o["status"]):
                continue  # the broker and we agree: nothing to write
            await self._sync_one(int(o["order_id"]), b_filled, b_amount, b_cancel, rejected, stream_up, done)

    async def _modify_chains(self, conn: Conn, order_ids: list[int]) -> dict[int, list[str]]:
        if not order_ids:
            return {}
        rows = await (await conn.execute(
            "SELECT order_id, broker_order_no FROM trade.order_amendments WHERE order_id = ANY(%s)"
            " AND kind = 'MODIFY' AND status = 'ACCEPTED' AND broker_order_no IS NOT NULL ORDER BY amendment_id",
            (order_ids,))).fetchall()
        out: dict[int, list[str]] = {}
        for r in rows:
            out.setdefault(int(r["order_id"]), []).append(r["broker_order_no"])
        return out

    async def _sync_one(self, order_id: int, b_filled: int, b_amount: Decimal, b_cancel: int, rejected: bool,
                        stream_up: bool, done: dict[str, int]) -> None:
        ex = self.ex
        now = ex.clock.now()
        async with ex.pool.connection() as conn:
            order = await (await conn.execute(Q["order_for_update"], {"order_id": order_id})).fetchone()
            assert order is not None
            totals = await (await conn.execute(Q["fill_totals"], {"order_id": order_id})).fetchone()
            assert totals is not None
            missing = b_filled - int(totals["qty"])
            missing_since = order["fills_missing_since"]
            if missing > 0:
                waited = missing_since is not None and (
                    time.time() - missing_since.timestamp() >= ex.cfg.missing_fill_grace_s)
                if not stream_up or waited:
                    await self._add_missing_fill(conn, order, missing, b_amount - Decimal(totals["amount"]), now)
                    done["fills_added"] += 1
                    missing_since = None
                elif missing_since is None:
                    missing_since = datetime.now(KST)
            else:
                missing_since = None
                if missing < 0:
                    await events.emit(conn, SERVICE, "ReconcileMismatch",
                                      f"order {order_id}: our fills {totals['qty']} exceed the broker's {b_filled}",
                                      level="ERROR", symbol=order["symbol"], order_id=order_id)
            await conn.execute(Q["set_broker_view"], {"order_id": order_id, "qty": b_filled, "amount": b_amount,
                                                      "seen_ts": now, "missing_since": missing_since})
            before = order["status"]
            order = {**order, "broker_filled_qty": b_filled}
            after = await self.notices.refresh_totals(conn, order, cancelled=min(b_cancel, int(order["qty"])),
                                                      rejected=rejected)
            if after != before:
                await events.emit(conn, SERVICE, "ReconcileCorrection",
                                  f"order {order_id} {before} -> {after} (broker filled {b_filled}, "
                                  f"cancelled {b_cancel})", level="WARN", symbol=order["symbol"],
                                  intent_id=order["intent_id"], order_id=order_id, correction="status",
                                  before=before, after=after)
                done["corrected"] += 1

    async def _add_missing_fill(self, conn: Conn, order: dict[str, Any], qty: int, amount: Decimal,
                                now: datetime) -> None:
        price = (amount / qty).quantize(Decimal("0.01"), ROUND_HALF_UP) if qty else Decimal(0)
        if price <= 0:
            price = Decimal(order["limit_price"] or 1)
        market = Market((await (await conn.execute("SELECT market FROM market.symbols WHERE symbol = %s",
                                                   (order["symbol"],))).fetchone() or {"market": "KOSPI"})["market"])
        fee, tax = fill_costs(order["side"], qty, price, market, order["trade_date"], self.ex.fees)
        cum = int(order["filled_qty"]) + qty
        await conn.execute(Q["insert_fill"], {
            "order_id": order["order_id"], "exec_key": f"r:{order['broker_order_no']}:{cum}",
            "symbol": order["symbol"], "side": order["side"], "qty": qty, "price": price, "fee": fee, "tax": tax,
            "ts": now, "source": "RECONCILE"})
        self.funds.on_fill(order["side"], order["symbol"], qty, price * qty, fee + tax)
        await events.emit(conn, SERVICE, "ReconcileCorrection",
                          f"order {order['order_id']}: added {qty}@{price} the notices never reported",
                          level="WARN", symbol=order["symbol"], intent_id=order["intent_id"],
                          order_id=order["order_id"], correction="missing_fill", qty=qty, price=str(price))
        self.ex.count("fills_reconciled")

    # --- cancels / modifies in doubt, unknown orders, funds -------------------------------------------

    async def _resolve_amendments(self, day: date, listing: list[DailyCcldRow]) -> None:
        async with self.ex.pool.connection() as conn:
            params = {**STATUS_SETS, "after_s": self.ex.cfg.in_doubt_grace_s}
            rows = [r for r in await (await conn.execute(Q["open_amendments"], params)).fetchall()
                    if r["trade_date"] == day]
            linked = {r["broker_order_no"] for r in await (await conn.execute(Q["linked_numbers"],
                                                                               {"trade_date": day})).fetchall()}
            for a in rows:
                if a["status"] == "PENDING_SUBMIT":
                    await conn.execute(Q["set_amendment"], {"amendment_id": a["amendment_id"], "status": "IN_DOUBT",
                                                             "reason": "sender vanished", "odno": None, "raw": None})
                found = next((r for r in listing if r.orgn_odno == a["orgn_order_no"] and r.odno not in linked), None)
                if found is not None:
                    await conn.execute(Q["set_amendment"], {"amendment_id": a["amendment_id"], "status": "ACCEPTED",
                                                             "reason": "found at the broker", "odno": found.odno,
                                                             "raw": None})
                    await conn.execute(Q["finish_cancel_request"], {"request_id": a["request_id"], "status": "DONE",
                                                                     "reason": "found at the broker"})
                    linked.add(found.odno)
                else:
                    # Strategy sees FAILED and may ask again: a second cancel is harmless
                    await conn.execute(Q["set_amendment"], {"amendment_id": a["amendment_id"], "status": "ERROR",
                                                             "reason": "absent at the broker", "odno": None,
                                                             "raw": None})
                    await conn.execute(Q["finish_cancel_request"], {"request_id": a["request_id"], "status": "FAILED",
                                                                     "reason": "the cancel never reached the broker"})

    async def _record_manual(self, day: date, listing: list[DailyCcldRow]) -> None:
        """Record the broker's orders that are none of ours as MANUAL orders (seed 002: 수동 주문은
        별도 마킹), so their fills count in positions and in-doubt resolution can never adopt them.

        Only while nothing of ours is waiting for the broker's word: until then an unlinked broker
        order may still be one of ours.  Amendments (a number with an original) are not orders.
        """
        ex = self.ex
        async with ex.pool.connection() as conn:
            linked = {r["broker_order_no"] for r in await (await conn.execute(Q["linked_numbers"],
                                                                               {"trade_date": day})).fetchall()}
            unlinked = [r for r in listing if r.odno not in linked and not r.orgn_odno]
            # their fills are not in our ledger yet, recorded below or not: no drift there this pass
            self._unlinked_symbols.update(r.symbol for r in unlinked)
            waiting = await (await conn.execute(Q["awaiting_broker"], STATUS_SETS)).fetchone()
            if waiting is None or waiting["waiting"]:
                return
            for r in unlinked:
                at = datetime.combine(r.ord_dt, r.ord_tmd, KST) if r.ord_tmd else ex.clock.now()
                # our name for its ORD_DVSN; a type we never send (03 최유리, 05, …), or a priced one
                # without a price, is kept as MKT, with the broker's own code in ord_dvsn
                order_type = _ORDER_TYPE_OF.get(r.ord_dvsn_cd, OrderType.MKT)
                if order_type in PRICED_ORDER_TYPES and r.ord_unpr <= 0:
                    order_type = OrderType.MKT
                row = await (await conn.execute(Q["record_manual_order"], {
                    "trade_date": day, "symbol": r.symbol, "side": r.side.value, "qty": r.ord_qty,
                    "order_type": order_type, "ord_dvsn": r.ord_dvsn_cd,
                    "limit_price": r.ord_unpr if order_type in PRICED_ORDER_TYPES else None,
                    "at": at})).fetchone()
                assert row is not None
                await conn.execute(Q["link_ack"], {"order_id": row["order_id"], "odno": r.odno,
                                                   "org_no": r.ord_gno_brno, "status": OrderStatus.SUBMITTED,
                                                   "raw": None})
                await events.emit(conn, SERVICE, "ManualOrder",
                                  f"broker order {r.odno} ({r.side.value} {r.ord_qty} {r.symbol}) was placed outside "
                                  "stock-manager: recorded as MANUAL, its fills count in positions", level="WARN",
                                  symbol=r.symbol, market_ts=ex.clock.now(), order_id=row["order_id"],
                                  broker_order_no=r.odno)
                await self.notices.apply_orphans(conn, day, r.odno)
                ex.count("manual_orders")

    async def check_positions(self) -> PositionVerdict | None:
        """Compare the broker's holdings with the net of our fills and record the verdict.

        Returns None when no comparison could be made: the broker did not answer, or a fill was
        recorded while its holdings were being asked for (the two would describe different moments).
        """
        ex = self.ex
        async with ex.pool.connection() as conn:
            before = await (await conn.execute(Q["ledger_mark"])).fetchone()
        # the check is stamped with the moment the holdings were asked for: the broker's figures
        # describe that moment or a later one (Strategy sizes after-close sells on checks since a time)
        asked = ex.clock.now()
        try:
            balance = await ex.broker.rest.inquire_balance()
        except KisError as e:
            logger.warning("could not ask the broker for its holdings: {}", e)
            return None
        async with ex.pool.connection() as conn:
            after = await (await conn.execute(Q["ledger_mark"])).fetchone()
            if before != after:
                return None
            ours = {r["symbol"]: int(r["qty"]) for r in await (await conn.execute(Q["ledger_positions"])).fetchall()}
            last = await (await conn.execute(Q["last_position_check"])).fetchone()
            previous = [PositionDiff.of_json(d) for d in last["diffs"]] if last is not None else None
            diffs = compare({r.symbol: r.hldg_qty for r in balance.rows}, ours)
            moving = {r["symbol"] for r in await (await conn.execute(Q["symbols_in_flight"], STATUS_SETS)).fetchall()}
            result = verdict(diffs, previous, in_flight=moving | self._unlinked_symbols)
            now = ex.clock.now()
            await conn.execute(Q["insert_position_check"], {
                "market_ts": asked, "verdict": result, "symbols": len(set(ours) | {r.symbol for r in balance.rows}),
                "diffs": Jsonb([d.as_json() for d in diffs])})
            if result is PositionVerdict.MISMATCH:
                await events.emit(conn, SERVICE, "PositionMismatch",
                                  f"positions differ from the broker's: {describe(diffs)}; checking again",
                                  level="WARN", market_ts=now, diffs=[d.as_json() for d in diffs])
            elif result is PositionVerdict.DRIFT:
                await events.emit(conn, SERVICE, "PositionDrift",
                                  f"positions still differ from the broker's: {describe(diffs)}; nothing recorded "
                                  "explains it, trading halts", level="ERROR", market_ts=now,
                                  diffs=[d.as_json() for d in diffs])
            await check_costs(conn, balance.summary, now)  # the same balance: fees and tax too
        ex.count("position_checks")
        return result


_ORDER_TYPE_OF = {dvsn: OrderType(t) for t, dvsn in ORD_DVSN.items()}


def _padded(r: DailyCcldRow) -> DailyCcldRow:
    """Order numbers as stored here: ten digits, the form KIS itself uses in query results."""
    return dataclasses.replace(r, odno=format_odno(r.odno), orgn_odno=format_odno(r.orgn_odno) if r.orgn_odno else None)


def _key_of(r: dict[str, Any]) -> tuple[str, str, int, str, int]:
    return (r["symbol"], r["side"], int(r["qty"]), r["ord_dvsn"],
            int(r["limit_price"]) if r["limit_price"] is not None else 0)


def _pending(r: dict[str, Any]) -> PendingOrder:
    at = r["attempt_market_ts"] or r["attempt_ts"]
    return PendingOrder(int(r["order_id"]), r["symbol"], r["side"], int(r["qty"]), r["ord_dvsn"],
                        int(r["limit_price"]) if r["limit_price"] is not None else 0, at)


def _broker(r: DailyCcldRow) -> BrokerOrder:
    at = datetime.combine(r.ord_dt, r.ord_tmd, KST) if r.ord_tmd else None
    return BrokerOrder(r.odno, r.symbol, r.side.value, r.ord_qty, r.ord_dvsn_cd, r.ord_unpr, at, r.orgn_odno)
