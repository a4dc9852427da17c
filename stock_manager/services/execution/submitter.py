"""Intents to KIS orders, at most once each.

The protocol (docs/execution.md has the proof):
1. claim a batch of NEW intents (``FOR UPDATE SKIP LOCKED``), validate each, and in the same
   transaction write the order row ahead as PENDING_SUBMIT; commit;
2. send the HTTP order, unless the write-ahead is older than ``send_deadline_s``;
3. record the outcome: an ack links the broker number (SUBMITTED); a business rejection ends
   REJECTED; a definite non-send ends ERROR / FAILED; anything else is IN_DOUBT, which only the
   reconciler resolves, from the broker's own order list.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping, Sequence
from contextvars import Context
from datetime import datetime
from decimal import Decimal
from typing import Any

from loguru import logger
from psycopg import AsyncConnection, errors
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from stock_manager.services.execution.batching import GroupCommit
from stock_manager.services.execution.context import SERVICE, Exec, Q
from stock_manager.services.execution.funds import FundsView
from stock_manager.services.execution.notices import NoticeApplier
from stock_manager.services.execution.rules import ORD_DVSN, Intent, SymbolInfo, unaffordable, validate
from stock_manager.shared import events
from stock_manager.shared.kis.errors import BusinessRejected, KisError, OutcomeUnknown
from stock_manager.shared.kis.models import OrderAck, Side, format_odno
from stock_manager.shared.kis.ports import PrepaidLimiter, Priority
from stock_manager.shared.market_rules import Market, trade_date
from stock_manager.shared.trade_states import STATUS_SETS, IntentStatus, OrderStatus

Conn = AsyncConnection[DictRow]


class Submitter:
    def __init__(self, ex: Exec, funds: FundsView, notices: NoticeApplier) -> None:
        self.ex = ex
        self.funds = funds
        self.notices = notices
        self._tasks: set[asyncio.Task[None]] = set()
        self._write_ahead: GroupCommit[tuple[Intent, datetime], int | None] = GroupCommit(self._write_ahead_batch)
        self._acks: GroupCommit[tuple[int, str, OrderAck], bool] = GroupCommit(self._record_acks_batch)

    async def run(self, waker: Any, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                claimed = await self.cycle()
            except Exception as e:  # the loop survives a bad cycle; the next one retries
                logger.exception("intent cycle failed: {}", type(e).__name__)
                claimed = 0
            if len(self._tasks) >= self.ex.cfg.concurrency:
                await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)
            elif claimed == 0:
                await waker.wait(self.ex.cfg.poll_s)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cycle(self) -> int:
        """Claim and validate a batch; each valid intent goes on to be written ahead and sent.

        Never claims more than it has room to send at once, so an intent does not sit claimed
        behind the rate limiter for long.  Returns how many were claimed.
        """
        ex = self.ex
        room = min(ex.cfg.batch, ex.cfg.concurrency - len(self._tasks))
        if room <= 0:
            return 0
        valid: list[Intent] = []
        paid: list[Intent] = []
        ready: list[tuple[int, Intent]] = []
        recheck: list[tuple[Intent, SymbolInfo, str]] = []
        claimed_at = time.monotonic()
        async with ex.pool.connection() as conn:
            rows = await (await conn.execute(Q["claim_intents"], {"batch": room, "me": ex.owner})).fetchall()
            if not rows:
                return 0
            now = ex.clock.now()
            budget_open = True
            for r in rows:
                intent = Intent(str(r["intent_id"]), r["action_key"], r["symbol"], r["side"], r["intent_type"],
                                int(r["qty"]), r["order_type"], r["limit_price"])
                info = _info(r)
                reason = validate(intent, info, r["trading_state"], now)
                if reason is None:
                    assert info is not None  # an unknown symbol is a reason
                    short = unaffordable(intent, info, self.funds.snapshot(), ex.fees)
                    if short is not None:
                        # our figures say no, but they may be stale: the broker's fresh ones decide
                        recheck.append((intent, info, short))
                        continue
                    self.funds.reserve(intent, info)
                    # the budget has room now: write ahead in this transaction.  Once it has none,
                    # stop asking: each try is a round trip that would delay the paid sends
                    if budget_open and await ex.broker.limiter.try_slot(Priority.ORDER):
                        paid.append(intent)
                    else:
                        budget_open = False
                        valid.append(intent)
                    continue
                await conn.execute(Q["finish_intent"], {"intent_id": intent.intent_id,
                                                        "status": IntentStatus.REJECTED, "reason": reason})
                await events.emit(conn, SERVICE, "IntentRejected", reason, level="WARN", symbol=intent.symbol,
                                  intent_id=intent.intent_id, market_ts=now, action_key=intent.action_key)
                ex.count("rejected_validation")
            if paid:
                order_ids = await self._write_ahead_rows(conn, [(i, now) for i in paid])
                ready = [(o, i) for o, i in zip(order_ids, paid, strict=True) if o is not None]
        written = time.monotonic()
        paid_ctx = PrepaidLimiter.prepaid_context(Priority.ORDER)
        for order_id, intent in ready:
            self._spawn(self._send_guarded(order_id, intent, written), paid_ctx.copy())
        for intent in valid:
            self._spawn(self._submit_guarded(intent), None)
        for intent, info, short in recheck:
            self._spawn(self._recheck_guarded(intent, info, short, claimed_at), None)
        return len(rows)

    async def _recheck_guarded(self, intent: Intent, info: SymbolInfo, short: str, claimed_at: float) -> None:
        try:
            await self.recheck(intent, info, short, claimed_at)
        except Exception as e:
            logger.exception("re-checking intent {} failed unexpectedly: {}", intent.intent_id, type(e).__name__)

    async def recheck(self, intent: Intent, info: SymbolInfo, short: str, claimed_at: float) -> None:
        """Our figures said the account cannot carry this order: ask the broker, then decide.

        Only figures asked for after the intent was claimed count, so every fill before the claim
        is in them.  If the broker cannot be asked, the order goes out and the broker decides.
        """
        ex = self.ex
        if await self.funds.sync(since=claimed_at):
            short_now = unaffordable(intent, info, self.funds.snapshot(), ex.fees)
            if short_now is not None:
                reason = f"{short_now} (the broker's figures)"
                async with ex.pool.connection() as conn:
                    await finish_intent_if_processing(conn, intent.intent_id, IntentStatus.REJECTED, reason)
                    await events.emit(conn, SERVICE, "IntentRejected", reason, level="WARN", symbol=intent.symbol,
                                      intent_id=intent.intent_id, market_ts=ex.clock.now(),
                                      action_key=intent.action_key, our_figures=short)
                ex.count("rejected_funds")
                return
            logger.info("intent {}: our figures said '{}'; the broker's allow it", intent.intent_id, short)
            ex.count("funds_rechecked_ok")
        self.funds.reserve(intent, info)
        await self.submit(intent)

    def _spawn(self, coro: Coroutine[Any, Any, None], context: Context | None) -> None:
        task = asyncio.create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_guarded(self, order_id: int, intent: Intent, written: float) -> None:
        try:
            await self.send(order_id, intent, written)
        except Exception as e:
            logger.exception("sending order {} failed unexpectedly: {}", order_id, type(e).__name__)

    async def _submit_guarded(self, intent: Intent) -> None:
        try:
            await self.submit(intent)
        except Exception as e:
            logger.exception("submitting intent {} failed unexpectedly: {}", intent.intent_id, type(e).__name__)

    async def submit(self, intent: Intent) -> None:
        """Take the rate slot, write the order ahead (commit), send it at once."""
        ex = self.ex
        await ex.broker.limiter.prepay(Priority.ORDER)
        order_id = await self._write_ahead.submit((intent, ex.clock.now()))
        if order_id is None:
            # another process wrote this intent's order (it took the intent over): it sends, not us
            ex.count("write_ahead_conflicts")
            return
        await self.send(order_id, intent, time.monotonic())

    async def _write_ahead_batch(self, items: Sequence[tuple[Intent, datetime]]) -> list[int | None]:
        async with self.ex.pool.connection() as conn:
            return await self._write_ahead_rows(conn, items)

    async def _write_ahead_rows(self, conn: Conn, items: Sequence[tuple[Intent, datetime]]) -> list[int | None]:
        """Write several orders ahead in the caller's transaction; None where the intent has one."""
        ex = self.ex
        rows = await (await conn.execute(Q["write_ahead_many"], {
            "me": ex.owner,
            "intent_ids": [i.intent_id for i, _ in items],
            "trade_dates": [trade_date(at) for _, at in items],
            "symbols": [i.symbol for i, _ in items],
            "sides": [i.side for i, _ in items],
            "qtys": [i.qty for i, _ in items],
            "order_types": [i.order_type for i, _ in items],
            "ord_dvsns": [ORD_DVSN[i.order_type] for i, _ in items],
            "limit_prices": [i.limit_price for i, _ in items],
            "market_ts": [at for _, at in items],
        })).fetchall()
        by_intent = {str(r["intent_id"]): int(r["order_id"]) for r in rows}
        return [by_intent.get(i.intent_id) for i, _ in items]

    async def send(self, order_id: int, intent: Intent, written: float) -> None:
        ex = self.ex
        if time.monotonic() - written > ex.cfg.send_deadline_s:
            # Too late: a resolver may already consider this row abandoned.  Not sending is safe;
            # the reconciler finds it absent at the broker and sends it again.
            await self._record_in_doubt(order_id, intent, "not sent: write-ahead older than the send deadline")
            return
        ex.sending.add(order_id)
        price = int(intent.limit_price) if intent.limit_price is not None else 0
        t0 = time.perf_counter()
        try:
            ack = await ex.broker.rest.order_cash(Side(intent.side), intent.symbol, intent.qty,
                                                  ORD_DVSN[intent.order_type], price)
        except BusinessRejected as e:
            await self._record_rejected(order_id, intent, e)
        except OutcomeUnknown as e:
            await self._record_in_doubt(order_id, intent, f"outcome unknown: {e.cause}")
        except KisError as e:
            await self._record_not_sent(order_id, intent, e)
        except BaseException as e:  # a bug or cancellation mid-send: we cannot know if it left
            await asyncio.shield(self._record_in_doubt(order_id, intent, f"send interrupted: {type(e).__name__}"))
            raise
        else:
            ex.stats["last_order_ms"] = round((time.perf_counter() - t0) * 1000, 2)
            if not await self._acks.submit((order_id, intent.intent_id, ack)):
                await self.record_ack(order_id, intent.intent_id, ack)
        finally:
            ex.sending.discard(order_id)

    async def _record_acks_batch(self, items: Sequence[tuple[int, str, OrderAck]]) -> list[bool]:
        """Link many acks in one transaction; False for any the caller must record one by one."""
        ex = self.ex
        try:
            async with ex.pool.connection() as conn:
                rows = await (await conn.execute(Q["link_acks"], {
                    **STATUS_SETS,
                    "order_ids": [o for o, _, _ in items],
                    "odnos": [format_odno(a.odno) for _, _, a in items],
                    "org_nos": [a.org_no for _, _, a in items],
                    "raws": [Jsonb(_safe_raw(a.raw)) for _, _, a in items],
                    "market_ts": ex.clock.now(),
                })).fetchall()
                for r in rows:
                    if r["has_orphans"]:
                        await self.notices.apply_orphans(conn, r["trade_date"], r["broker_order_no"])
        except errors.IntegrityError:
            return [False] * len(items)  # e.g. a number linked elsewhere: sort it out one by one
        for r in rows:
            logger.info("[OrderSubmitted] order {}: {} {} {}", r["broker_order_no"], r["side"], r["qty"], r["symbol"])
        linked = {int(r["order_id"]) for r in rows}
        ex.count("submitted", len(linked))
        return [o in linked for o, _, _ in items]

    async def record_ack(self, order_id: int, intent_id: str, ack: OrderAck) -> None:
        ex = self.ex
        odno = format_odno(ack.odno)
        try:
            async with ex.pool.connection() as conn:
                order = await (await conn.execute(Q["order_for_update"], {"order_id": order_id})).fetchone()
                assert order is not None
                if order["broker_order_no"] not in (None, odno):
                    raise RuntimeError(f"order {order_id} already linked to {order['broker_order_no']}")
                status = order["status"]
                if status in (OrderStatus.PENDING_SUBMIT, OrderStatus.IN_DOUBT):
                    status = OrderStatus.SUBMITTED
                await conn.execute(Q["link_ack"], {"order_id": order_id, "odno": odno, "org_no": ack.org_no,
                                                   "status": status, "raw": Jsonb(_safe_raw(ack.raw))})
                await finish_intent_if_processing(conn, intent_id, IntentStatus.SUBMITTED, None)
                await events.emit(conn, SERVICE, "OrderSubmitted",
                                  f"order {odno}: {order['side']} {order['qty']} {order['symbol']}",
                                  symbol=order["symbol"], intent_id=intent_id, market_ts=ex.clock.now(),
                                  order_id=order_id, broker_order_no=odno)
                await self.notices.apply_orphans(conn, order["trade_date"], odno)
            ex.count("submitted")
        except errors.UniqueViolation:
            # the broker number is already linked elsewhere: leave this one to the reconciler
            await self._record_in_doubt(order_id, None, f"ack {odno} conflicts with a linked order")

    async def _record_rejected(self, order_id: int, intent: Intent, e: BusinessRejected) -> None:
        reason = f"KIS {e.msg_cd or ''} {(e.msg1 or '').strip()}".strip()
        async with self.ex.pool.connection() as conn:
            await conn.execute(Q["set_order_status"], {"order_id": order_id, "status": OrderStatus.REJECTED,
                                                        "reason": reason,
                                                        "raw": Jsonb({"reject": _safe_raw(e.raw or {})})})
            await finish_intent_if_processing(conn, intent.intent_id, IntentStatus.REJECTED, reason)
            await events.emit(conn, SERVICE, "OrderRejected", reason, level="WARN", symbol=intent.symbol,
                              intent_id=intent.intent_id, market_ts=self.ex.clock.now(), order_id=order_id,
                              msg_cd=e.msg_cd)
        self.ex.count("rejected_broker")

    async def _record_not_sent(self, order_id: int, intent: Intent, e: KisError) -> None:
        reason = f"not sent: {e}"
        async with self.ex.pool.connection() as conn:
            await conn.execute(Q["set_order_status"], {"order_id": order_id, "status": OrderStatus.ERROR,
                                                        "reason": reason, "raw": None})
            await finish_intent_if_processing(conn, intent.intent_id, IntentStatus.FAILED, reason)
            await events.emit(conn, SERVICE, "OrderFailed", reason, level="ERROR", symbol=intent.symbol,
                              intent_id=intent.intent_id, market_ts=self.ex.clock.now(), order_id=order_id)
        self.ex.count("failed")

    async def _record_in_doubt(self, order_id: int, intent: Intent | None, reason: str) -> None:
        async with self.ex.pool.connection() as conn:
            order = await (await conn.execute(Q["order_for_update"], {"order_id": order_id})).fetchone()
            if order is None or order["status"] != OrderStatus.PENDING_SUBMIT:
                return
            await conn.execute(Q["set_order_status"], {"order_id": order_id, "status": OrderStatus.IN_DOUBT,
                                                        "reason": reason, "raw": None})
            await events.emit(conn, SERVICE, "OrderInDoubt", reason, level="WARN", symbol=order["symbol"],
                              market_ts=self.ex.clock.now(), order_id=order_id)
        self.ex.reconcile_now.set()
        self.ex.count("in_doubt")


async def finish_intent_if_processing(conn: Conn, intent_id: str, status: IntentStatus, reason: str | None) -> None:
    await conn.execute(Q["finish_processing_intent"], {"intent_id": intent_id, "status": status, "reason": reason})


def _info(row: dict[str, Any]) -> SymbolInfo | None:
    if row["known_symbol"] is None:
        return None
    return SymbolInfo(row["symbol"], Market(row["market"]), bool(row["halted"]),
                      int(row["upper_limit"]) if row["upper_limit"] is not None else None,
                      int(row["lower_limit"]) if row["lower_limit"] is not None else None,
                      Decimal(row["last_price"]) if row["last_price"] is not None else None)


def _safe_raw(raw: Mapping[str, Any]) -> dict[str, Any]:
    """KIS answers carry no credentials, but keep only the documented keys all the same."""
    keep = ("rt_cd", "msg_cd", "msg1", "output")
    return {k: raw[k] for k in keep if k in raw}
