"""Status values and legal transitions of intents, orders, amendments and workers, and the order
types an intent may ask for: the one place in Python.

Orders and amendments move by events: ``ORDER_TABLE`` and ``AMENDMENT_TABLE`` map (state, event) to
the next state, and Execution writes every step through one compare-and-set
(``stock_manager/services/execution/orders.py``).  The database holds the same pairs
(``trade.*_transitions``) and a trigger enforces them; a test checks that the two agree.  ``NONE``
stands for "no row yet" (the insert).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from stock_manager.shared.market_rules import Phase

NONE = "NONE"
E = TypeVar("E", bound=StrEnum)
S = TypeVar("S", bound=StrEnum)


class IntentStatus(StrEnum):
    NEW = "NEW"
    PROCESSING = "PROCESSING"
    SUBMITTED = "SUBMITTED"
    DUPLICATE = "DUPLICATE"
    REJECTED = "REJECTED"
    FAILED = "FAILED"


class OrderStatus(StrEnum):
    PENDING_SUBMIT = "PENDING_SUBMIT"  # written ahead of the HTTP call and committed
    IN_DOUBT = "IN_DOUBT"  # the broker may or may not have it: resolve from its order list
    SUBMITTED = "SUBMITTED"
    PARTIAL = "PARTIAL"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    ERROR = "ERROR"  # confirmed absent at the broker and given up


class AmendmentStatus(StrEnum):
    """A cancel or modify of one of our orders, itself a broker order with its own number."""

    PENDING_SUBMIT = "PENDING_SUBMIT"
    IN_DOUBT = "IN_DOUBT"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    ERROR = "ERROR"


class OrderOrigin(StrEnum):
    INTENT = "INTENT"  # sent by Execution for an intent
    MANUAL = "MANUAL"  # placed at the broker by a person (HTS/MTS), recorded so positions count it


class PositionVerdict(StrEnum):
    """Execution's comparison of the broker's holdings with the net of our fills."""

    AGREE = "AGREE"
    MISMATCH = "MISMATCH"  # a difference seen once: it may be a fill still on its way
    DRIFT = "DRIFT"  # the same difference again a pass later: unexplained, trading halts


class WorkerStatus(StrEnum):
    IDLE = "IDLE"
    SCAN = "SCAN"
    HOLD = "HOLD"
    EXIT = "EXIT"


INTENT_TERMINAL = frozenset(
    {IntentStatus.SUBMITTED, IntentStatus.DUPLICATE, IntentStatus.REJECTED, IntentStatus.FAILED}
)
INTENT_OPEN = frozenset(set(IntentStatus) - INTENT_TERMINAL)
ORDER_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.ERROR})
ORDER_OPEN = frozenset(set(OrderStatus) - ORDER_TERMINAL)
# written ahead or in doubt: the broker's word on whether it has the order is still awaited
ORDER_AWAITING_BROKER = frozenset({OrderStatus.PENDING_SUBMIT, OrderStatus.IN_DOUBT})
# at the broker (it gave the order a number) and still working there
ORDER_WORKING = frozenset({OrderStatus.SUBMITTED, OrderStatus.PARTIAL})
AMENDMENT_AWAITING_BROKER = frozenset({AmendmentStatus.PENDING_SUBMIT, AmendmentStatus.IN_DOUBT})

# The status sets as query parameters: SQL never spells them out (``status = ANY(%(open_orders)s)``).
# Pass them along with a query's own parameters (``{**STATUS_SETS, ...}``); psycopg ignores the ones
# a query does not name.
STATUS_SETS: dict[str, list[str]] = {
    "open_intents": sorted(INTENT_OPEN),
    "open_orders": sorted(ORDER_OPEN),
    "awaiting_orders": sorted(ORDER_AWAITING_BROKER),
    "working_orders": sorted(ORDER_WORKING),
    "awaiting_amendments": sorted(AMENDMENT_AWAITING_BROKER),
}

_I = IntentStatus
INTENT_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (NONE, _I.NEW),
        (_I.NEW, _I.PROCESSING),
        (_I.NEW, _I.REJECTED),
        (_I.NEW, _I.DUPLICATE),
        (_I.PROCESSING, _I.SUBMITTED),
        (_I.PROCESSING, _I.REJECTED),
        (_I.PROCESSING, _I.FAILED),
        (_I.PROCESSING, _I.DUPLICATE),
        (_I.PROCESSING, _I.NEW),
    }
)

_O = OrderStatus

_W = WorkerStatus
WORKER_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (NONE, _W.IDLE),
        (_W.IDLE, _W.SCAN),
        (_W.IDLE, _W.EXIT),
        (_W.SCAN, _W.HOLD),
        (_W.SCAN, _W.EXIT),
        (_W.SCAN, _W.IDLE),
        (_W.HOLD, _W.SCAN),
        (_W.HOLD, _W.EXIT),
    }
)


class IllegalTransition(ValueError):
    pass


def check(table: frozenset[tuple[str, str]], current: str, target: str) -> str:
    """``target`` if moving there from ``current`` is legal (staying put always is)."""
    if current == target or (current, target) in table:
        return target
    raise IllegalTransition(f"{current} -> {target}")


CANCEL_REQUEST_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (NONE, "NEW"),
        ("NEW", "PROCESSING"),
        ("NEW", "DONE"),
        ("NEW", "FAILED"),
        ("PROCESSING", "DONE"),
        ("PROCESSING", "FAILED"),
        ("PROCESSING", "NEW"),
    }
)

# --- the order state machine ----------------------------------------------------------------------
#
# Every status change of an order or an amendment is an event applied to the state it was read in:
# ``next_state(table, state, event)`` says where it goes, or refuses (IllegalTransition), and
# ``stock_manager/services/execution/orders.py`` writes it in one compare-and-set.  The pairs the
# database accepts (``trade.order_transitions``, ``trade.amendment_transitions``, enforced by the
# status trigger) are exactly the ones these tables produce.


class OrderEvent(StrEnum):
    CREATED = "CREATED"  # written ahead for an intent, or recorded as a manual order
    ACKED = "ACKED"  # the broker answered our request with its order number
    FOUND = "FOUND"  # the broker's order list holds it (an order in doubt, or one placed by hand)
    REJECTED = "REJECTED"  # the broker or the exchange refused it
    NOT_SENT = "NOT_SENT"  # it provably never reached the broker
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"  # it may have reached the broker: only its order list can tell
    ABSENT = "ABSENT"  # the broker's list has no such order: written ahead again, to be sent again
    GIVEN_UP = "GIVEN_UP"  # absent after the last attempt
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"


class AmendmentEvent(StrEnum):
    CREATED = "CREATED"
    ACKED = "ACKED"
    FOUND = "FOUND"
    REJECTED = "REJECTED"
    NOT_SENT = "NOT_SENT"
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
    ABSENT = "ABSENT"


_E = OrderEvent
ORDER_TABLE: dict[tuple[str, OrderEvent], OrderStatus] = {
    (NONE, _E.CREATED): _O.PENDING_SUBMIT,
    (_O.PENDING_SUBMIT, _E.ACKED): _O.SUBMITTED,
    (_O.IN_DOUBT, _E.ACKED): _O.SUBMITTED,  # an answer that came after the order was taken into doubt
    (_O.PENDING_SUBMIT, _E.FOUND): _O.SUBMITTED,
    (_O.IN_DOUBT, _E.FOUND): _O.SUBMITTED,
    (_O.PENDING_SUBMIT, _E.REJECTED): _O.REJECTED,
    (_O.IN_DOUBT, _E.REJECTED): _O.REJECTED,
    (_O.SUBMITTED, _E.REJECTED): _O.REJECTED,  # the exchange's refusal, after the broker took it
    (_O.PENDING_SUBMIT, _E.NOT_SENT): _O.ERROR,
    (_O.IN_DOUBT, _E.NOT_SENT): _O.ERROR,
    (_O.PENDING_SUBMIT, _E.OUTCOME_UNKNOWN): _O.IN_DOUBT,
    (_O.IN_DOUBT, _E.ABSENT): _O.PENDING_SUBMIT,  # the next attempt
    (_O.IN_DOUBT, _E.GIVEN_UP): _O.ERROR,
    (_O.SUBMITTED, _E.PARTIALLY_FILLED): _O.PARTIAL,
    (_O.SUBMITTED, _E.FILLED): _O.FILLED,
    (_O.PARTIAL, _E.FILLED): _O.FILLED,
    (_O.SUBMITTED, _E.CANCELLED): _O.CANCELLED,
    (_O.PARTIAL, _E.CANCELLED): _O.CANCELLED,
}

_A, _AE = AmendmentStatus, AmendmentEvent
AMENDMENT_TABLE: dict[tuple[str, AmendmentEvent], AmendmentStatus] = {
    (NONE, _AE.CREATED): _A.PENDING_SUBMIT,
    (_A.PENDING_SUBMIT, _AE.ACKED): _A.ACCEPTED,
    (_A.IN_DOUBT, _AE.ACKED): _A.ACCEPTED,
    (_A.PENDING_SUBMIT, _AE.FOUND): _A.ACCEPTED,
    (_A.IN_DOUBT, _AE.FOUND): _A.ACCEPTED,
    (_A.PENDING_SUBMIT, _AE.REJECTED): _A.REJECTED,
    (_A.IN_DOUBT, _AE.REJECTED): _A.REJECTED,
    (_A.PENDING_SUBMIT, _AE.NOT_SENT): _A.ERROR,
    (_A.PENDING_SUBMIT, _AE.OUTCOME_UNKNOWN): _A.IN_DOUBT,
    (_A.IN_DOUBT, _AE.ABSENT): _A.ERROR,  # a cancel is never sent again by itself: Strategy may ask again
}

# What an order's event makes of its intent, when the intent still waits for it (PROCESSING).
INTENT_OUTCOME: dict[OrderEvent, IntentStatus] = {
    _E.ACKED: IntentStatus.SUBMITTED,
    _E.FOUND: IntentStatus.SUBMITTED,
    _E.REJECTED: IntentStatus.REJECTED,
    _E.NOT_SENT: IntentStatus.FAILED,
    _E.GIVEN_UP: IntentStatus.FAILED,
}
# What an amendment's event makes of the cancel request it carries out, when it is PROCESSING.
REQUEST_OUTCOME: dict[AmendmentEvent, str] = {
    _AE.ACKED: "DONE",
    _AE.FOUND: "DONE",
    _AE.REJECTED: "FAILED",
    _AE.NOT_SENT: "FAILED",
    _AE.ABSENT: "FAILED",
}
# The event that moves an order to the status its quantities say (``rules.order_status``).
QUANTITY_EVENT: dict[OrderStatus, OrderEvent] = {
    _O.PARTIAL: _E.PARTIALLY_FILLED,
    _O.FILLED: _E.FILLED,
    _O.CANCELLED: _E.CANCELLED,
    _O.REJECTED: _E.REJECTED,
}


def next_state(table: Mapping[tuple[str, E], S], state: str, event: E) -> S:
    """Where ``event`` takes a row in ``state``; IllegalTransition if the table has no such step."""
    try:
        return table[(state, event)]
    except KeyError:
        raise IllegalTransition(f"{state} --{event}--> (no such transition)") from None


def pairs(table: Mapping[tuple[str, E], S]) -> frozenset[tuple[str, str]]:
    """The (from, to) status pairs a table produces: what the database's trigger accepts."""
    return frozenset((str(state), str(nxt)) for (state, _), nxt in table.items() if state != nxt)


ORDER_TRANSITIONS = pairs(ORDER_TABLE)
AMENDMENT_TRANSITIONS = pairs(AMENDMENT_TABLE)


class OrderType(StrEnum):
    """What an intent asks the broker for; each is one KIS ORD_DVSN (kis-api-facts §3.1).

    Migration 0014 holds the same list in CHECK constraints on ``trade.order_intents`` and
    ``trade.orders``; a test checks that the two agree.
    """

    MKT = "MKT"  # 01 시장가
    LMT = "LMT"  # 00 지정가
    CLMT = "CLMT"  # 02 조건부지정가: a limit until 15:20, then a market order in the closing auction
    CLOSE = "CLOSE"  # 06 장후 시간외 종가: at the day's closing price, 15:40-16:00
    AHS = "AHS"  # 07 시간외 단일가: a limit within ±10 % of the close, 16:00-18:00


_T = OrderType
ORD_DVSN: dict[str, str] = {_T.MKT: "01", _T.LMT: "00", _T.CLMT: "02", _T.CLOSE: "06", _T.AHS: "07"}
PRICED_ORDER_TYPES = frozenset({_T.LMT, _T.CLMT, _T.AHS})
# The phases a session-bound type may be sent in.  MKT and LMT are absent: their timing is left to
# the broker, as it always was.  Paper KIS takes neither CLOSE nor AHS (it knows ORD_DVSN 00-04 only).
ORDER_TYPE_PHASES: dict[str, frozenset[Phase]] = {
    _T.CLMT: frozenset({Phase.CONTINUOUS}),  # it turns into a market order at 15:20; it cannot join the call
    _T.CLOSE: frozenset({Phase.POST_CLOSE}),
    _T.AHS: frozenset({Phase.AFTER_HOURS}),
}
