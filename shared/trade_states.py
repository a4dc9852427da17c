"""Status values and legal transitions of intents, orders and workers: the one place in Python.

The database holds the same tables (``trade.*_transitions``) and a trigger enforces them; a test
checks that the two agree.  ``NONE`` stands for "no row yet" (the insert).
"""

from __future__ import annotations

from enum import StrEnum

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


class WorkerStatus(StrEnum):
    IDLE = "IDLE"
    SCAN = "SCAN"
    HOLD = "HOLD"
    EXIT = "EXIT"


INTENT_TERMINAL = frozenset(
    {IntentStatus.SUBMITTED, IntentStatus.DUPLICATE, IntentStatus.REJECTED, IntentStatus.FAILED}
)
ORDER_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.ERROR})
ORDER_OPEN = frozenset(set(OrderStatus) - ORDER_TERMINAL)

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
