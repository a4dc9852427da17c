"""Cancels and modifies of open orders, asked for by Strategy in ``trade.cancel_requests``.

Each becomes its own broker order (KIS gives it a new number linked by ``orgn_odno``), written
ahead in ``trade.order_amendments`` like any order.  A cancel of an order that is already filled
(or otherwise closed) ends FAILED with the reason; one the broker refuses ends FAILED with KIS's
message.  The cancelled quantity itself is the broker's word, read by the reconciler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Literal

from loguru import logger

from stock_manager.services.execution.context import SERVICE, Exec, Q
from stock_manager.services.execution.orders import apply
from stock_manager.services.execution.rules import ORD_DVSN
from stock_manager.shared import events
from stock_manager.shared.kis.errors import BusinessRejected, KisError, OutcomeUnknown
from stock_manager.shared.kis.models import format_odno
from stock_manager.shared.market_rules import trade_date
from stock_manager.shared.trade_states import STATUS_SETS, AmendmentEvent, AmendmentStatus, OrderStatus


class CancelProcessor:
    def __init__(self, ex: Exec) -> None:
        self.ex = ex

    async def run(self, waker: Any, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                n = await self.cycle()
            except Exception as e:
                logger.exception("cancel cycle failed: {}", type(e).__name__)
                n = 0
            if n == 0:
                await waker.wait(self.ex.cfg.poll_s)

    async def cycle(self) -> int:
        ex = self.ex
        async with ex.pool.connection() as conn:
            requests = await (await conn.execute(Q["claim_cancel_requests"], {**STATUS_SETS, "batch": 16})).fetchall()
        for req in requests:
            await self.handle(req)
        return len(requests)

    async def handle(self, req: dict[str, Any]) -> None:
        ex = self.ex
        async with ex.pool.connection() as conn:
            order = await (await conn.execute(Q["order_for_update"], {"order_id": req["order_id"]})).fetchone()
            assert order is not None
            if order["status"] not in (OrderStatus.SUBMITTED, OrderStatus.PARTIAL):
                reason = f"order is already {order['status']}: nothing to {req['kind'].lower()}"
                await conn.execute(Q["finish_cancel_request"], {"request_id": req["request_id"], "status": "FAILED",
                                                                 "reason": reason})
                await events.emit(conn, SERVICE, "CancelRejected", reason, level="WARN", symbol=order["symbol"],
                                  intent_id=req["intent_id"], order_id=order["order_id"])
                return
            chain = await (await conn.execute(Q["amendments_of_order"], {"order_id": order["order_id"]})).fetchall()
            latest = order["broker_order_no"]
            for a in chain:
                if a["kind"] == "MODIFY" and a["status"] == "ACCEPTED" and a["broker_order_no"]:
                    latest = a["broker_order_no"]
            ord_dvsn = ORD_DVSN[req["new_order_type"]] if req["kind"] == "MODIFY" else order["ord_dvsn"]
            price = int(req["new_price"]) if req["new_price"] is not None else 0
            row = await (await conn.execute(Q["insert_amendment"], {
                "request_id": req["request_id"], "order_id": order["order_id"], "kind": req["kind"],
                "trade_date": trade_date(ex.clock.now()), "orgn": latest, "qty": req["qty"], "price": price or None,
                "ord_dvsn": ord_dvsn, "market_ts": ex.clock.now(), "me": ex.owner})).fetchone()
            assert row is not None
            amendment_id = int(row["amendment_id"])
        qty: int | Literal["all"] = int(req["qty"]) if req["qty"] is not None else "all"
        try:
            if req["kind"] == "CANCEL":
                ack = await ex.broker.cancel(latest, order["broker_org_no"] or "", qty, ord_dvsn=order["ord_dvsn"])
            else:
                ack = await ex.broker.modify(latest, order["broker_org_no"] or "", ord_dvsn=ord_dvsn, price=price,
                                             qty=qty)
        except BusinessRejected as e:
            await self._finish(amendment_id, req, AmendmentEvent.REJECTED,
                               f"KIS {e.msg_cd or ''} {(e.msg1 or '').strip()}", None)
        except OutcomeUnknown as e:
            await self._finish(amendment_id, req, AmendmentEvent.OUTCOME_UNKNOWN, f"outcome unknown: {e.cause}", None)
        except KisError as e:
            await self._finish(amendment_id, req, AmendmentEvent.NOT_SENT, f"not sent: {e}", None)
        else:
            await self._finish(amendment_id, req, AmendmentEvent.ACKED, ack.msg1.strip(), format_odno(ack.odno),
                               ack.raw)
        ex.reconcile_now.set()

    async def _finish(self, amendment_id: int, req: dict[str, Any], event: AmendmentEvent, reason: str,
                      odno: str | None, raw: Mapping[str, Any] | None = None) -> None:
        """The amendment's outcome, through its state machine; the request ends with it (DONE or
        FAILED), except while in doubt, which the reconciler resolves."""
        fields: dict[str, Any] = {}
        if odno is not None:
            fields["broker_order_no"] = odno
        if raw:
            fields["raw"] = {k: raw[k] for k in ("msg_cd", "msg1") if k in raw}
        outcome = _OUTCOME_WORD[event]
        async with self.ex.pool.connection() as conn:
            row = await apply(conn, amendment_id, event, AmendmentStatus.PENDING_SUBMIT, actor=self.ex.owner,
                              market_ts=self.ex.clock.now(), reason=reason, **fields)
            if row is None:
                logger.warning("{} {}: {} came after the amendment was settled elsewhere; not recorded",
                               req["kind"].lower(), amendment_id, event)
                return
            await events.emit(conn, SERVICE, f"{req['kind'].capitalize()}{outcome}", reason,
                              level="INFO" if event is AmendmentEvent.ACKED else "WARN", intent_id=req["intent_id"],
                              amendment_id=amendment_id, broker_order_no=odno)


# the event kinds as they always were: CancelAccepted, CancelRejected, CancelIn_doubt, CancelFailed
_OUTCOME_WORD = {AmendmentEvent.ACKED: "Accepted", AmendmentEvent.REJECTED: "Rejected",
                 AmendmentEvent.OUTCOME_UNKNOWN: "In_doubt", AmendmentEvent.NOT_SENT: "Failed"}
