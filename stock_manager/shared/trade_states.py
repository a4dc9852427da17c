"""Status values and legal transitions of intents, orders and workers, and the order types an
intent may ask for: the one place in Python.

The database holds the same tables (``trade.*_transitions``) and a trigger enforces them; a test
checks that the two agree.  ``NONE`` stands for "no row yet" (the insert).
"""

from __future__ import annotations

from enum import StrEnum

from stock_manager.shared.market_rules import Phase

NONE = "NONE"


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
AMENDMENT_AWAITING_BROKER = frozenset({"PENDING_SUBMIT", "IN_DOUBT"})

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
ORDER_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (NONE, _O.PENDING_SUBMIT),
        *((_O.PENDING_SUBMIT, s) for s in (_O.SUBMITTED, _O.PARTIAL, _O.FILLED, _O.REJECTED, _O.IN_DOUBT,
                                           _O.CANCELLED, _O.ERROR)),
        *((_O.IN_DOUBT, s) for s in (_O.PENDING_SUBMIT, _O.SUBMITTED, _O.PARTIAL, _O.FILLED, _O.CANCELLED,
                                     _O.REJECTED, _O.ERROR)),
        *((_O.SUBMITTED, s) for s in (_O.PARTIAL, _O.FILLED, _O.CANCELLED, _O.REJECTED)),
        (_O.PARTIAL, _O.FILLED),
        (_O.PARTIAL, _O.CANCELLED),
    }
)

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

AMENDMENT_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (NONE, "PENDING_SUBMIT"),
        ("PENDING_SUBMIT", "ACCEPTED"),
        ("PENDING_SUBMIT", "REJECTED"),
        ("PENDING_SUBMIT", "IN_DOUBT"),
        ("IN_DOUBT", "ACCEPTED"),
        ("IN_DOUBT", "REJECTED"),
        ("IN_DOUBT", "PENDING_SUBMIT"),
        ("IN_DOUBT", "ERROR"),
    }
)


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
