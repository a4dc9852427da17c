"""Intents to KIS orders, at most once each.

The protocol (docs/execution.md has the proof), one path for every order:
1. claim a batch of NEW intents (``FOR UPDATE SKIP LOCKED``) and validate each;
2. for each valid one: take its rate slot, then write the order ahead as PENDING_SUBMIT and commit
   (the slot first, so a committed write-ahead never waits behind the limiter);
3. send the HTTP order, unless the write-ahead is older than ``send_deadline_s``;
4. record the outcome as an event of the order's state machine (``orders.apply``): an ack links the
   broker number (ACKED); a business rejection ends REJECTED; a definite non-send ends ERROR
   (NOT_SENT); anything else is IN_DOUBT (OUTCOME_UNKNOWN), which only the reconciler resolves,
   from the broker's own order list.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from loguru import logger
from psycopg import AsyncConnection, errors
from psycopg.rows import DictRow

from stock_manager.services.execution.batching import GroupCommit
from stock_manager.services.execution.context import SERVICE, Exec, Q
from stock_manager.services.execution.funds import FundsView
from stock_manager.services.execution.notices import NoticeApplier
from stock_manager.services.execution.orders import UNFENCED, apply
from stock_manager.services.execution.rules import ORD_DVSN, Intent, SymbolInfo, unaffordable, validate
from stock_manager.shared import events
from stock_manager.shared.kis.errors import BusinessRejected, KisError, OutcomeUnknown
from stock_manager.shared.kis.models import OrderAck, Side, format_odno
from stock_manager.shared.market_rules import Market, trade_date
from stock_manager.shared.trade_states import IntentStatus, OrderEvent, OrderStatus

Conn = AsyncConnection[DictRow]


class Submitter:
    def __init__(self, ex: Exec, funds: FundsView, notices: NoticeApplier) -> None:
        self.ex = ex
        self.funds = funds
        self.notices = notices
        self._tasks: set[asyncio.Task[None]] = set()
        self._write_ahead: GroupCommit[tuple[Intent, datetime], tuple[int, int] | None] = GroupCommit(
            self._write_ahead_batch)
        self._acks: GroupCommit[tuple[int, int, OrderAck], bool] = GroupCommit(self._record_acks_batch)

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
        recheck: list[tuple[Intent, SymbolInfo, str]] = []
        claimed_at = time.monotonic()
        async with ex.pool.connection() as conn:
            await conn.execute(Q["claim_without_flush"])
            rows = await (await conn.execute(Q["claim_intents"], {"batch": room, "me": ex.owner})).fetchall()
            if not rows:
                return 0
            now = ex.clock.now()
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
                    else:
                        self.funds.reserve(intent, info)
                        valid.append(intent)
                    continue
                await conn.execute(Q["finish_intent"], {"intent_id": intent.intent_id,
                                                        "status": IntentStatus.REJECTED, "reason": reason})
                await events.emit(conn, SERVICE, "IntentRejected", reason, level="WARN", symbol=intent.symbol,
                                  intent_id=intent.intent_id, market_ts=now, action_key=intent.action_key)
                ex.count("rejected_validation")
        for intent in valid:
            self._spawn(f"submitting intent {intent.intent_id}", self.submit(intent))
        for intent, info, short in recheck:
            self._spawn(f"re-checking intent {intent.intent_id}", self.recheck(intent, info, short, claimed_at))
        return len(rows)

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
                    await conn.execute(Q["finish_processing_intent"], {
                        **UNFENCED, "intent_id": intent.intent_id, "status": IntentStatus.REJECTED, "reason": reason})
                    await events.emit(conn, SERVICE, "IntentRejected", reason, level="WARN", symbol=intent.symbol,
                                      intent_id=intent.intent_id, market_ts=ex.clock.now(),
                                      action_key=intent.action_key, our_figures=short)
                ex.count("rejected_funds")
                return
            logger.info("intent {}: our figures said '{}'; the broker's allow it", intent.intent_id, short)
            ex.count("funds_rechecked_ok")
        self.funds.reserve(intent, info)
        await self.submit(intent)

    def _spawn(self, what: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guarded(what, coro), name=what)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(what: str, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except Exception as e:
            logger.exception("{} failed unexpectedly: {}", what, type(e).__name__)

    async def submit(self, intent: Intent) -> None:
        """The one way an order goes out: its rate slot, its write-ahead (committed), the send."""
        ex = self.ex
        await ex.broker.reserve_order_slot()
        written = await self._write_ahead.submit((intent, ex.clock.now()))
        if written is None:
            # another process wrote this intent's order (it took the intent over): it sends, not us
            ex.count("write_ahead_conflicts")
            return
        order_id, attempt = written
        await self.send(order_id, attempt, intent, time.monotonic(), slot_taken=True)

    async def _write_ahead_batch(self, items: Sequence[tuple[Intent, datetime]]) -> list[tuple[int, int] | None]:
        """Write several orders ahead in one statement and commit; None where the intent has one."""
        ex = self.ex
        async with ex.pool.connection() as conn:
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
        by_intent = {str(r["intent_id"]): (int(r["order_id"]), int(r["submit_attempts"])) for r in rows}
        return [by_intent.get(i.intent_id) for i, _ in items]

    async def send(self, order_id: int, attempt: int, intent: Intent, written: float, *, slot_taken: bool,
                   alive: Callable[[], bool] | None = None) -> None:
        """Send attempt ``attempt`` of an order written ahead at ``written`` (monotonic) and record
        what became of it.  ``alive`` (the reconciler's lease) must still hold to send at all."""
        ex = self.ex
        late = time.monotonic() - written > ex.cfg.send_deadline_s
        if late or (alive is not None and not alive()):
            # Too late: a resolver may already consider this row abandoned.  Not sending is safe;
            # the reconciler finds it absent at the broker and sends it again.
            why = "write-ahead older than the send deadline" if late else "the reconciler's lease lapsed"
            await self._outcome(order_id, attempt, OrderEvent.OUTCOME_UNKNOWN, f"not sent: {why}", intent)
            return
        ex.sending.add(order_id)
        price = int(intent.limit_price) if intent.limit_price is not None else 0
        t0 = time.perf_counter()
        try:
            ack = await ex.broker.place(Side(intent.side), intent.symbol, intent.qty, ORD_DVSN[intent.order_type],
                                        price, slot_taken=slot_taken)
        except BusinessRejected as e:
            reason = f"KIS {e.msg_cd or ''} {(e.msg1 or '').strip()}".strip()
            await self._outcome(order_id, attempt, OrderEvent.REJECTED, reason, intent,
                                raw={"reject": _safe_raw(e.raw or {})}, msg_cd=e.msg_cd)
        except OutcomeUnknown as e:
            await self._outcome(order_id, attempt, OrderEvent.OUTCOME_UNKNOWN, f"outcome unknown: {e.cause}", intent)
        except KisError as e:
            await self._outcome(order_id, attempt, OrderEvent.NOT_SENT, f"not sent: {e}", intent)
        except BaseException as e:  # a bug or cancellation mid-send: we cannot know if it left
            await asyncio.shield(self._outcome(order_id, attempt, OrderEvent.OUTCOME_UNKNOWN,
                                               f"send interrupted: {type(e).__name__}", intent))
            raise
        else:
            ex.stats["last_order_ms"] = round((time.perf_counter() - t0) * 1000, 2)
            if not await self._acks.submit((order_id, attempt, ack)):
                await self._ack_alone(order_id, attempt, ack)
        finally:
            ex.sending.discard(order_id)

    async def _record_acks_batch(self, items: Sequence[tuple[int, int, OrderAck]]) -> list[bool]:
        """Link many acks in one transaction (group commit); all False if one broke it (a number
        linked elsewhere): then each is recorded by itself."""
        ex = self.ex
        now = ex.clock.now()
        try:
            async with ex.pool.connection() as conn:
                linked = [row for order_id, _, ack in items
                          if (row := await self._link_ack(conn, order_id, ack, now)) is not None]
                await _submitted_events(conn, linked, now)
                await self._apply_orphans(conn, linked)
        except errors.IntegrityError:
            return [False] * len(items)
        ex.count("submitted", len(linked))
        return [True] * len(items)

    async def _ack_alone(self, order_id: int, attempt: int, ack: OrderAck) -> None:
        ex = self.ex
        try:
            async with ex.pool.connection() as conn:
                now = ex.clock.now()
                row = await self._link_ack(conn, order_id, ack, now)
                if row is not None:
                    await _submitted_events(conn, [row], now)
                    await self._apply_orphans(conn, [row])
                    ex.count("submitted")
        except errors.UniqueViolation:
            # the broker number is already linked elsewhere: leave this one to the reconciler
            await self._outcome(order_id, attempt, OrderEvent.OUTCOME_UNKNOWN,
                                f"ack {format_odno(ack.odno)} conflicts with a linked order", None)

    async def _link_ack(self, conn: Conn, order_id: int, ack: OrderAck, now: datetime) -> dict[str, Any] | None:
        """The one way an ack links its order (``ACKED``): from PENDING_SUBMIT, or from IN_DOUBT if a
        resolver took it into doubt meanwhile.  None when there is nothing to link: the reconciler
        found it first under the same number, or the order moved on (reported as AckConflict)."""
        ex = self.ex
        odno = format_odno(ack.odno)
        fields: dict[str, Any] = {"broker_order_no": odno, "broker_org_no": ack.org_no, "raw": _safe_raw(ack.raw)}
        row = await apply(conn, order_id, OrderEvent.ACKED, OrderStatus.PENDING_SUBMIT, actor=ex.owner,
                          market_ts=now, **fields)
        if row is None:
            order = await (await conn.execute(Q["order_for_update"], {"order_id": order_id})).fetchone()
            assert order is not None
            if order["broker_order_no"] == odno:
                return None
            if order["status"] == OrderStatus.IN_DOUBT and order["broker_order_no"] is None:
                row = await apply(conn, order_id, OrderEvent.ACKED, OrderStatus.IN_DOUBT, actor=ex.owner,
                                  market_ts=now, **fields)
            if row is None:
                await events.emit(conn, SERVICE, "AckConflict",
                                  f"order {order_id} is {order['status']} (broker number "
                                  f"{order['broker_order_no']}); the broker acked it again as {odno}",
                                  level="ERROR", symbol=order["symbol"], order_id=order_id, broker_order_no=odno)
                return None
        return row

    async def _apply_orphans(self, conn: Conn, linked: Sequence[Mapping[str, Any]]) -> None:
        """Apply the notices that came before their orders' numbers were known (one look for all)."""
        if not linked:
            return
        waiting = await (await conn.execute(Q["orphan_numbers"], {
            "trade_dates": sorted({r["trade_date"] for r in linked}),
            "odnos": [r["broker_order_no"] for r in linked]})).fetchall()
        numbers = {r["broker_order_no"] for r in waiting}
        for r in linked:
            if r["broker_order_no"] in numbers:
                await self.notices.apply_orphans(conn, r["trade_date"], r["broker_order_no"])

    async def _outcome(self, order_id: int, attempt: int | None, event: OrderEvent, reason: str,
                       intent: Intent | None, raw: dict[str, Any] | None = None, **data: Any) -> None:
        """Record what became of our own attempt: from PENDING_SUBMIT, or, for a definite answer,
        from IN_DOUBT if a resolver took the attempt into doubt meanwhile.  A later attempt (or a
        resolved one) is never touched: the compare-and-set holds the attempt."""
        ex = self.ex
        now = ex.clock.now()
        fields: dict[str, Any] = {"raw": raw} if raw is not None else {}
        async with ex.pool.connection() as conn:
            row = await apply(conn, order_id, event, OrderStatus.PENDING_SUBMIT, attempt=attempt, reason=reason,
                              actor=ex.owner, market_ts=now, **fields)
            if row is None and event is not OrderEvent.OUTCOME_UNKNOWN:
                row = await apply(conn, order_id, event, OrderStatus.IN_DOUBT, attempt=attempt, reason=reason,
                                  actor=ex.owner, market_ts=now, **fields)
            if row is None:
                return  # someone else settled this attempt first
            symbol = row["symbol"]
            if event is OrderEvent.REJECTED:
                await events.emit(conn, SERVICE, "OrderRejected", reason, level="WARN", symbol=symbol,
                                  intent_id=row["intent_id"], market_ts=now, order_id=order_id, **data)
            elif event is OrderEvent.NOT_SENT:
                await events.emit(conn, SERVICE, "OrderFailed", reason, level="ERROR", symbol=symbol,
                                  intent_id=row["intent_id"], market_ts=now, order_id=order_id)
            else:
                await events.emit(conn, SERVICE, "OrderInDoubt", reason, level="WARN", symbol=symbol,
                                  market_ts=now, order_id=order_id)
        if event is OrderEvent.OUTCOME_UNKNOWN:
            ex.reconcile_now.set()
        ex.count({OrderEvent.REJECTED: "rejected_broker", OrderEvent.NOT_SENT: "failed"}.get(event, "in_doubt"))


async def _submitted_events(conn: Conn, linked: Sequence[Mapping[str, Any]], now: datetime) -> None:
    """One OrderSubmitted event per linked order, all in one statement (and a log line each)."""
    if not linked:
        return
    await conn.execute(Q["submitted_events"], {
        "market_ts": now, "order_ids": [r["order_id"] for r in linked],
        "odnos": [r["broker_order_no"] for r in linked], "sides": [r["side"] for r in linked],
        "qtys": [r["qty"] for r in linked], "symbols": [r["symbol"] for r in linked],
        "intent_ids": [r["intent_id"] for r in linked]})
    for r in linked:
        logger.info("[OrderSubmitted] order {}: {} {} {}", r["broker_order_no"], r["side"], r["qty"], r["symbol"])


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
