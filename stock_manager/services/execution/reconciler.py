"""Brings our orders and fills in line with the broker, which always wins.

One Execution at a time reconciles: it holds the lease row, whose epoch every write of its pass
carries (``orders.Fence``), so a pass that outlives its lease writes nothing.  Every 10-30 s, or
every 5 s while the notice stream is down, it lists the day's orders at the broker
(inquire-daily-ccld, newest first, back to the oldest order still open here; the whole day on a
process's first pass and every twentieth) and:
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
from stock_manager.services.execution.orders import Fence, LeaseLost, apply, fenced
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
from stock_manager.services.execution.submitter import Submitter
from stock_manager.shared import events
from stock_manager.shared.clock import KST, kst
from stock_manager.shared.kis.errors import KisError
from stock_manager.shared.kis.models import DailyCcldRow, format_odno
from stock_manager.shared.market_rules import Market, trade_date
from stock_manager.shared.trade_states import (
    PRICED_ORDER_TYPES,
    STATUS_SETS,
    AmendmentEvent,
    AmendmentStatus,
    IntentStatus,
    OrderEvent,
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
        self.fence: Fence | None = None
        # symbols of broker orders this pass saw and could not link (nor record as manual yet)
        self._unlinked_symbols: set[str] = set()
        self._passes = 0

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            cadence = self.ex.cfg.reconcile_s
            try:
                self.fence = await self.take_lease()
                if self.fence is not None:
                    await self.pass_once()
                    if not await self._notice_stream_up():
                        cadence = self.ex.cfg.reconcile_fast_s
            except LeaseLost as e:
                logger.warning("reconcile pass stopped, nothing more written: {}", e)
                self.fence = None
            except KisError as e:
                logger.error("reconcile pass failed at the broker: {}", e)
            except Exception as e:
                logger.exception("reconcile pass failed: {}", type(e).__name__)
            self.ex.stats["leader"] = self.leader
            await self.ex.reconcile_now.wait(cadence)
        if self.fence is not None:
            async with self.ex.pool.connection() as conn:
                await conn.execute(Q["release_lease"], {"name": LEASE, "me": self.ex.owner})

    @property
    def leader(self) -> bool:
        return self.fence is not None

    async def take_lease(self) -> Fence | None:
        """Take or renew the lease; the fence of this pass, or None while another process holds it.

        The lease's epoch rises whenever it changes hands or is taken again after it lapsed, so a
        pass that began under an older epoch can write nothing.  This process stops writing a
        tenth of the TTL before the lease would lapse, counted from before the request.
        """
        ttl = self.ex.cfg.lease_ttl_s
        asked = time.monotonic()
        async with self.ex.pool.connection() as conn:
            row = await (await conn.execute(Q["take_lease"], {"name": LEASE, "me": self.ex.owner,
                                                               "ttl_s": ttl})).fetchone()
        if row is None:
            return None
        return Fence(LEASE, self.ex.owner, int(row["epoch"]), asked + 0.9 * ttl)

    async def _renew(self) -> None:
        """Extend the lease in the middle of a pass (after a long wait on the broker); the pass
        stops if the lease changed hands or lapsed meanwhile: only the same epoch proves that no
        other reconciler held it in between."""
        fence = self.fence
        if fence is None:
            raise LeaseLost("not the leader")
        renewed = await self.take_lease()
        if renewed is None or renewed.epoch != fence.epoch:
            self.fence = renewed
            raise LeaseLost(f"lease {LEASE} epoch {fence.epoch} lapsed during the pass")
        self.fence = renewed

    def _fence(self) -> Fence:
        if self.fence is None:
            raise LeaseLost("not the leader")
        self.fence.check()
        return self.fence

    async def _held(self) -> Fence:
        """The fence for the next write, the lease renewed first once half of it has run: a long
        pass keeps its lease while its process is alive, and one that was frozen finds, when it
        wakes, that the lease lapsed or moved on (a new epoch), and stops."""
        if self.fence is not None and self.fence.deadline - time.monotonic() < 0.45 * self.ex.cfg.lease_ttl_s:
            await self._renew()
        return self._fence()

    async def _notice_stream_up(self) -> bool:
        async with self.ex.pool.connection() as conn:
            row = await (await conn.execute(Q["feed_status"])).fetchone()
        return bool(row and row["connected"] and row["notices_subscribed"] and row["age_s"] < 60)

    async def pass_once(self) -> dict[str, int]:
        """One reconciliation under the lease held (``take_lease``); returns counts of what it did
        (for tests and the heartbeat).  Raises LeaseLost, having written nothing more, once the
        lease has moved on."""
        ex = self.ex
        t0 = time.perf_counter()
        self._fence()
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
            # What may be resolved from this list is decided before it is asked for: only an order
            # whose sender had already given up (or died) by then can be missing from it for good.
            stale = await self._stale(day)
            amendments = await self._open_amendments(day)
            listed_before = await self._db_now()
            listing = [_padded(r) for r in await ex.broker.orders_of_day(day, ordered_since=since)]
            await self._renew()  # the list may have taken a while (many pages at 2/s on paper)
            await self._resolve_in_doubt(day, stale, listing, done)
            await self._sync_orders(day, listing, listed_before, stream_up, done)
            await self._resolve_amendments(day, amendments, listing)
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
        """Intents a crash left behind: claimed but never written ahead, or with an untold outcome
        (which the order's own step now writes with it; this covers rows from before)."""
        cfg = self.ex.cfg
        async with self.ex.pool.connection() as conn:
            fence = (await self._held()).params()
            await fenced(conn, "reclaim_stale_intents", {**fence, "stale_s": cfg.stale_pending_s,
                                                         "dead_s": cfg.owner_dead_after_s})
            for r in await (await conn.execute(Q["intents_without_outcome"], STATUS_SETS)).fetchall():
                status = {OrderStatus.REJECTED: IntentStatus.REJECTED,
                          OrderStatus.ERROR: IntentStatus.FAILED}.get(r["order_status"], IntentStatus.SUBMITTED)
                await fenced(conn, "finish_processing_intent", {**fence, "intent_id": str(r["intent_id"]),
                                                                "status": status, "reason": r["status_reason"]})

    # --- in doubt -------------------------------------------------------------------------------------

    async def _stale(self, day: date) -> list[dict[str, Any]]:
        """``day``'s orders no send can still be under way for (in doubt past the grace, or written
        ahead by a process that is gone or too long ago), less those this process is sending."""
        async with self.ex.pool.connection() as conn:
            rows = await (await conn.execute(Q["stale_pending"], self._stale_params())).fetchall()
        return [dict(r) for r in rows if r["trade_date"] == day and r["order_id"] not in self.ex.sending]

    async def _resolve_in_doubt(self, day: date, stale: list[dict[str, Any]], listing: list[DailyCcldRow],
                                done: dict[str, int]) -> None:
        """Each order that was stale before the list was asked for: found in the list (linked, like an
        ack), or absent from it (written ahead again and re-sent, or given up after the last attempt).
        Every step is a compare-and-set on the status and attempt read before the list, so an order
        that moved on since (its ack came, another attempt began) is left alone."""
        ex = self.ex
        sending = {_key_of(r) for r in stale if r["order_id"] in ex.sending}
        stale = [r for r in stale if r["order_id"] not in ex.sending]
        if not stale:
            return
        async with ex.pool.connection() as conn:
            young = await (await conn.execute(Q["young_pending"], {"after_s": ex.cfg.stale_pending_s})).fetchall()
            linked = {r["broker_order_no"] for r in await (await conn.execute(Q["linked_numbers"],
                                                                               {"trade_date": day})).fetchall()}
        stale_ids = {s["order_id"] for s in stale}
        # groups of identical orders one of which a live sender may still link: not this pass
        busy = {_key_of(r) for r in young if r["order_id"] not in stale_ids} | sending
        pending = [r for r in stale if _key_of(r) not in busy]
        unlinked = [_broker(r) for r in listing if r.odno not in linked]
        speed = max(ex.clock.speed, 1.0)
        matches = match_in_doubt([_pending(r) for r in pending], unlinked, before=timedelta(seconds=5 * speed),
                                 after=timedelta(seconds=(60 + ex.cfg.stale_pending_s) * speed),
                                 margin=timedelta(seconds=ex.cfg.listing_margin_s * speed))
        by_odno = {r.odno: r for r in listing}
        for order in pending:
            found = matches.get(int(order["order_id"]))
            if found is not None:
                if await self._found(order, by_odno[found.odno]):
                    done["resolved"] += 1
            elif await self._absent(order):
                done["resent"] += 1

    async def _found(self, order: dict[str, Any], row: DailyCcldRow) -> bool:
        """The broker has it: linked exactly like an ack."""
        ex = self.ex
        now = ex.clock.now()
        async with ex.pool.connection() as conn:
            linked = await apply(conn, int(order["order_id"]), OrderEvent.FOUND, order["status"],
                                 attempt=int(order["submit_attempts"]), fence=await self._held(), actor=ex.owner,
                                 market_ts=now, reason=f"found at the broker as {row.odno}",
                                 broker_order_no=row.odno, broker_org_no=row.ord_gno_brno)
            if linked is None:
                return False  # it moved on since the list was asked for
            await events.emit(conn, SERVICE, "InDoubtResolved",
                              f"order {order['order_id']} found at the broker as {row.odno}", level="WARN",
                              symbol=order["symbol"], intent_id=order["intent_id"], market_ts=now,
                              order_id=order["order_id"], broker_order_no=row.odno, outcome="found")
            await self.notices.apply_orphans(conn, order["trade_date"], row.odno)
        ex.count("in_doubt_found")
        return True

    async def _absent(self, order: dict[str, Any]) -> bool:
        """The broker has no such order: send it again, or give up after the last attempt."""
        ex = self.ex
        order_id, attempt = int(order["order_id"]), int(order["submit_attempts"])
        last = attempt >= ex.cfg.max_submit_attempts
        if not last:
            await self._renew()  # a send may take up to the order timeout: a whole lease for it
            # the slot first, so that the re-written order goes out the moment it is committed
            await ex.broker.reserve_order_slot()
        now = ex.clock.now()
        async with ex.pool.connection() as conn:
            status = order["status"]
            if status == OrderStatus.PENDING_SUBMIT:
                taken = await apply(conn, order_id, OrderEvent.OUTCOME_UNKNOWN, status, attempt=attempt,
                                    fence=await self._held(), actor=ex.owner, market_ts=now, reason="sender vanished")
                if taken is None:
                    return False
                status = OrderStatus.IN_DOUBT
            if last:
                reason = f"absent at the broker after {attempt} attempts"
                if await apply(conn, order_id, OrderEvent.GIVEN_UP, status, attempt=attempt, fence=await self._held(),
                               actor=ex.owner, market_ts=now, reason=reason) is None:
                    return False
                await events.emit(conn, SERVICE, "InDoubtResolved", f"order {order_id}: {reason}", level="ERROR",
                                  symbol=order["symbol"], intent_id=order["intent_id"], order_id=order_id,
                                  outcome="given_up")
                return False
            again = await apply(conn, order_id, OrderEvent.ABSENT, status, attempt=attempt, fence=await self._held(),
                                actor=ex.owner, market_ts=now, reason=f"absent at the broker: attempt {attempt + 1}",
                                claimed_by=ex.owner, attempt_market_ts=now)
            if again is None:
                return False
            await events.emit(conn, SERVICE, "InDoubtResolved",
                              f"order {order_id} absent at the broker: sending again", level="WARN",
                              symbol=order["symbol"], intent_id=order["intent_id"], order_id=order_id,
                              outcome="absent", attempt=attempt + 1)
        intent = Intent(str(order["intent_id"]), "", order["symbol"], order["side"], "", int(order["qty"]),
                        order["order_type"], order["limit_price"])
        await self.submitter.send(order_id, attempt + 1, intent, time.monotonic(), slot_taken=True,
                                  alive=self._fence().alive)
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
            add_fill = False
            if missing > 0:
                waited = missing_since is not None and (
                    time.time() - missing_since.timestamp() >= ex.cfg.missing_fill_grace_s)
                if not stream_up or waited:
                    add_fill = True
                    missing_since = None
                elif missing_since is None:
                    missing_since = datetime.now(KST)
            else:
                missing_since = None
            fence = await self._held()
            await fenced(conn, "set_broker_view", {**fence.params(), "order_id": order_id, "qty": b_filled,
                                                   "amount": b_amount, "seen_ts": now, "missing_since": missing_since})
            if missing < 0:
                await events.emit(conn, SERVICE, "ReconcileMismatch",
                                  f"order {order_id}: our fills {totals['qty']} exceed the broker's {b_filled}",
                                  level="ERROR", symbol=order["symbol"], order_id=order_id)
            if add_fill:
                await self._add_missing_fill(conn, order, missing, b_amount - Decimal(totals["amount"]), now)
                done["fills_added"] += 1
            before = order["status"]
            order = {**order, "broker_filled_qty": b_filled}
            after = await self.notices.refresh_totals(conn, order, cancelled=min(b_cancel, int(order["qty"])),
                                                      rejected=rejected, fence=await self._held())
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
        fence = await self._held()
        await fenced(conn, "insert_fill", {
            **fence.params(), "order_id": order["order_id"], "exec_key": f"r:{order['broker_order_no']}:{cum}",
            "symbol": order["symbol"], "side": order["side"], "qty": qty, "price": price, "fee": fee, "tax": tax,
            "ts": now, "source": "RECONCILE"})
        self.funds.on_fill(order["side"], order["symbol"], qty, price * qty, fee + tax)
        await events.emit(conn, SERVICE, "ReconcileCorrection",
                          f"order {order['order_id']}: added {qty}@{price} the notices never reported",
                          level="WARN", symbol=order["symbol"], intent_id=order["intent_id"],
                          order_id=order["order_id"], correction="missing_fill", qty=qty, price=str(price))
        self.ex.count("fills_reconciled")

    # --- cancels / modifies in doubt, unknown orders, funds -------------------------------------------

    async def _open_amendments(self, day: date) -> list[dict[str, Any]]:
        """``day``'s cancels and modifies still waiting for the broker's word past the grace."""
        params = {**STATUS_SETS, "after_s": self.ex.cfg.in_doubt_grace_s}
        async with self.ex.pool.connection() as conn:
            rows = await (await conn.execute(Q["open_amendments"], params)).fetchall()
        return [dict(r) for r in rows if r["trade_date"] == day]

    async def _resolve_amendments(self, day: date, amendments: list[dict[str, Any]],
                                  listing: list[DailyCcldRow]) -> None:
        """Each cancel or modify that was waiting before the list was asked for: found in it by its
        original number (ACCEPTED, the request DONE) or absent (ERROR, the request FAILED: Strategy
        sees it and may ask again; a second cancel is harmless)."""
        ex = self.ex
        if not amendments:
            return
        now = ex.clock.now()
        async with ex.pool.connection() as conn:
            linked = {r["broker_order_no"] for r in await (await conn.execute(Q["linked_numbers"],
                                                                               {"trade_date": day})).fetchall()}
            for a in amendments:
                amendment_id, status = int(a["amendment_id"]), a["status"]
                fence = await self._held()
                if status == AmendmentStatus.PENDING_SUBMIT:
                    if await apply(conn, amendment_id, AmendmentEvent.OUTCOME_UNKNOWN, status, fence=fence,
                                   actor=ex.owner, market_ts=now, reason="sender vanished") is None:
                        continue
                    status = AmendmentStatus.IN_DOUBT
                found = next((r for r in listing if r.orgn_odno == a["orgn_order_no"] and r.odno not in linked), None)
                if found is not None:
                    if await apply(conn, amendment_id, AmendmentEvent.FOUND, status, fence=fence, actor=ex.owner,
                                   market_ts=now, reason="found at the broker", broker_order_no=found.odno) is not None:
                        linked.add(found.odno)
                else:
                    await apply(conn, amendment_id, AmendmentEvent.ABSENT, status, fence=fence, actor=ex.owner,
                                market_ts=now, reason="absent at the broker: the cancel never reached it")

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
                fence = await self._held()
                row = await (await fenced(conn, "record_manual_order", {
                    **fence.params(), "me": ex.owner, "trade_date": day, "symbol": r.symbol, "side": r.side.value,
                    "qty": r.ord_qty, "order_type": order_type, "ord_dvsn": r.ord_dvsn_cd,
                    "limit_price": r.ord_unpr if order_type in PRICED_ORDER_TYPES else None,
                    "at": at})).fetchone()
                assert row is not None
                await apply(conn, int(row["order_id"]), OrderEvent.FOUND, OrderStatus.PENDING_SUBMIT, fence=fence,
                            actor=ex.owner, market_ts=ex.clock.now(), broker_order_no=r.odno,
                            broker_org_no=r.ord_gno_brno)
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
            balance = await ex.broker.holdings()
        except KisError as e:
            logger.warning("could not ask the broker for its holdings: {}", e)
            return None
        await self._renew()
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
            await fenced(conn, "insert_position_check", {
                **(await self._held()).params(), "market_ts": asked, "verdict": result,
                "symbols": len(set(ours) | {r.symbol for r in balance.rows}),
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
