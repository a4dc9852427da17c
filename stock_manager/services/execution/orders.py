"""The one write of an order's or an amendment's status.

``apply(conn, row_id, event, expected, ...)`` looks the step up in the transition table
(``stock_manager/shared/trade_states.py``: ``ORDER_TABLE`` or ``AMENDMENT_TABLE``, chosen by the
event's type) and writes it in one statement: a compare-and-set ``UPDATE … WHERE status =
expected`` (and on the attempt, when one is given), the journal row in ``trade.order_events``, and
what the step makes of the intent or the cancel request behind it.  Nothing else in Execution moves
a status, so every question "can this order be sent again?" reduces to "which process won that
compare-and-set?".  The database's status trigger checks the same pairs, as a backstop.

A reconciler's write carries its ``Fence`` (the lease epoch it holds): the statement itself checks
it (``trade.lease_check``), and raises ``LeaseLost`` once the lease has moved on, writing nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, AsyncCursor, Error
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from stock_manager.services.execution.context import Q
from stock_manager.shared.trade_states import (
    AMENDMENT_TABLE,
    INTENT_OUTCOME,
    NONE,
    ORDER_TABLE,
    REQUEST_OUTCOME,
    AmendmentEvent,
    OrderEvent,
    next_state,
)

Conn = AsyncConnection[DictRow]
LEASE_LOST_SQLSTATE = "SMF01"  # raised by trade.lease_check (migration 0025)

_ORDER_FIELDS = frozenset({"broker_order_no", "broker_org_no", "raw", "filled_qty", "filled_amount",
                           "cancelled_qty", "claimed_by", "attempt_market_ts"})
_AMENDMENT_FIELDS = frozenset({"broker_order_no", "raw"})


class LeaseLost(Exception):
    """The reconciler's lease has moved on (or is about to): its pass stops, having written nothing."""


@dataclass(frozen=True)
class Fence:
    """The lease a reconciler's writes are made under: its name, holder and epoch, and the
    monotonic time by which this process stops writing on its own (a little before it lapses)."""

    lease: str
    holder: str
    epoch: int
    deadline: float

    def alive(self) -> bool:
        return time.monotonic() < self.deadline

    def check(self) -> None:
        """Stop before a write, or a send, that the lease may no longer cover."""
        if not self.alive():
            raise LeaseLost(f"lease {self.lease} epoch {self.epoch}: this pass outlived it")

    def params(self) -> dict[str, Any]:
        return {"lease": self.lease, "holder": self.holder, "epoch": self.epoch}


UNFENCED: dict[str, Any] = {"lease": None, "holder": None, "epoch": None}


async def fenced(conn: Conn, query: str, params: dict[str, Any]) -> AsyncCursor[DictRow]:
    """Run a named statement that takes the lease parameters (``Fence.params`` or ``UNFENCED``),
    turning the lease check's refusal into LeaseLost."""
    try:
        return await conn.execute(Q[query], params)
    except Error as e:
        if e.sqlstate == LEASE_LOST_SQLSTATE:
            raise LeaseLost(str(e.diag.message_primary or e)) from None
        raise


def fence_params(fence: Fence | None) -> dict[str, Any]:
    """The parameters every fenced statement takes; ``None`` for a write that is not the reconciler's."""
    if fence is None:
        return UNFENCED
    fence.check()
    return fence.params()


async def apply(conn: Conn, row_id: int, event: OrderEvent | AmendmentEvent, expected: str, *, actor: str,
                attempt: int | None = None, reason: str | None = None, market_ts: datetime | None = None,
                fence: Fence | None = None, **fields: Any) -> dict[str, Any] | None:
    """Move order (or amendment) ``row_id`` from ``expected`` by ``event``; returns the row as written,
    or None when it was no longer in ``expected`` (someone else moved it first: nothing written).

    ``fields`` are the columns the step sets (a broker number, quantities, the broker's answer);
    ``attempt`` makes the compare-and-set also hold the attempt the caller wrote ahead, so a late
    outcome of an earlier attempt can never be taken for the current one.
    """
    amendment = isinstance(event, AmendmentEvent)
    table: Any = AMENDMENT_TABLE if amendment else ORDER_TABLE
    if expected == NONE:
        raise ValueError("rows are created by their INSERT (write_ahead_many, insert_amendment), not applied")
    target = next_state(table, expected, event)
    allowed = _AMENDMENT_FIELDS if amendment else _ORDER_FIELDS
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"{event}: no such field(s) {sorted(unknown)}")
    raw = fields.get("raw")
    params: dict[str, Any] = {
        **fence_params(fence),
        **dict.fromkeys(allowed),
        **fields,
        "raw": Jsonb(raw) if raw is not None else None,
        "id": row_id, "event": str(event), "expected": expected, "next": str(target), "attempt": attempt,
        "reason": reason, "actor": actor, "market_ts": market_ts,
    }
    if isinstance(event, AmendmentEvent):
        request = REQUEST_OUTCOME.get(event)
        params |= {"request_status": request, "request_reason": reason}
        query = "apply_amendment_event"
    else:
        outcome = INTENT_OUTCOME.get(event)
        params |= {"intent_status": str(outcome) if outcome else None,
                   "intent_reason": reason if outcome and outcome != "SUBMITTED" else None,
                   "new_attempt": event is OrderEvent.ABSENT}
        query = "apply_order_event"
    row = await (await fenced(conn, query, params)).fetchone()
    key = "amendment_id" if amendment else "order_id"
    if row is None or row[key] is None:
        return None
    return dict(row)
