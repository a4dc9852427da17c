"""The order and amendment state machines (``shared/trade_states.py``) as tables: pure, no database.

What the protocol's proof leans on is checked here as properties of the tables: a send has exactly
the four outcomes; an order can be written ahead again only from IN_DOUBT (after its attempt's
outcome is known to be unknown); nothing leaves a terminal state; fills and cancels need a broker
number first; and the pairs the database accepts are exactly the tables' steps.
"""

from __future__ import annotations

import pytest

from stock_manager.shared import trade_states as ts
from stock_manager.shared.trade_states import (
    AMENDMENT_TABLE,
    NONE,
    ORDER_TABLE,
    AmendmentEvent,
    AmendmentStatus,
    IllegalTransition,
    OrderEvent,
    OrderStatus,
    next_state,
)

S, E = OrderStatus, OrderEvent


def test_a_send_has_four_outcomes_and_each_has_a_step() -> None:
    outcomes = {e for (s, e) in ORDER_TABLE if s == S.PENDING_SUBMIT}
    assert outcomes == {E.ACKED, E.FOUND, E.REJECTED, E.NOT_SENT, E.OUTCOME_UNKNOWN}
    assert next_state(ORDER_TABLE, S.PENDING_SUBMIT, E.ACKED) is S.SUBMITTED
    assert next_state(ORDER_TABLE, S.PENDING_SUBMIT, E.OUTCOME_UNKNOWN) is S.IN_DOUBT
    assert next_state(ORDER_TABLE, S.PENDING_SUBMIT, E.NOT_SENT) is S.ERROR
    assert next_state(ORDER_TABLE, S.PENDING_SUBMIT, E.REJECTED) is S.REJECTED


def test_an_order_is_written_ahead_again_only_from_doubt() -> None:
    """The one step that leads to a second send: from IN_DOUBT, by ABSENT (the broker's list has no
    such order), back to PENDING_SUBMIT.  No other step reaches PENDING_SUBMIT."""
    into_pending = [(s, e) for (s, e), n in ORDER_TABLE.items() if n is S.PENDING_SUBMIT]
    assert into_pending == [(NONE, E.CREATED), (S.IN_DOUBT, E.ABSENT)]


def test_nothing_leaves_a_terminal_state() -> None:
    for table, terminal in ((ORDER_TABLE, ts.ORDER_TERMINAL),
                            (AMENDMENT_TABLE, {AmendmentStatus.ACCEPTED, AmendmentStatus.REJECTED,
                                               AmendmentStatus.ERROR})):
        assert not [(s, e) for (s, e) in table if s in terminal]


def test_fills_and_cancels_need_the_brokers_number() -> None:
    """Only an order the broker numbered (SUBMITTED, PARTIAL) fills or is cancelled."""
    for event in (E.PARTIALLY_FILLED, E.FILLED, E.CANCELLED):
        assert {s for (s, e) in ORDER_TABLE if e is event} <= ts.ORDER_WORKING
    assert {s for (s, e) in ORDER_TABLE if e is E.PARTIALLY_FILLED} == {S.SUBMITTED}


def test_every_quantity_status_has_its_event_from_submitted() -> None:
    for status, event in ts.QUANTITY_EVENT.items():
        assert next_state(ORDER_TABLE, S.SUBMITTED, event) is status


@pytest.mark.parametrize(("state", "event"), [
    (S.FILLED, E.CANCELLED), (S.ERROR, E.ABSENT), (S.SUBMITTED, E.ABSENT), (S.PENDING_SUBMIT, E.ABSENT),
    (S.SUBMITTED, E.ACKED), (S.IN_DOUBT, E.OUTCOME_UNKNOWN), (S.PARTIAL, E.PARTIALLY_FILLED), (NONE, E.ACKED),
])
def test_any_other_step_is_refused(state: str, event: OrderEvent) -> None:
    with pytest.raises(IllegalTransition):
        next_state(ORDER_TABLE, state, event)


def test_every_state_is_reachable_and_every_open_one_can_end() -> None:
    reached = {NONE}
    while True:
        more = {n for (s, _), n in ORDER_TABLE.items() if s in reached} - reached
        if not more:
            break
        reached |= more
    assert reached == {NONE, *OrderStatus}
    for state in ts.ORDER_OPEN:
        assert any(s == state for (s, _) in ORDER_TABLE), state


def test_the_intent_follows_only_final_answers() -> None:
    """An intent ends with its order's first final answer; doubt and re-sends leave it PROCESSING."""
    assert set(ts.INTENT_OUTCOME) == {E.ACKED, E.FOUND, E.REJECTED, E.NOT_SENT, E.GIVEN_UP}
    for event in (E.OUTCOME_UNKNOWN, E.ABSENT):
        assert event not in ts.INTENT_OUTCOME


def test_amendments() -> None:
    A, AE = AmendmentStatus, AmendmentEvent
    assert next_state(AMENDMENT_TABLE, A.PENDING_SUBMIT, AE.NOT_SENT) is A.ERROR
    assert next_state(AMENDMENT_TABLE, A.IN_DOUBT, AE.ABSENT) is A.ERROR
    assert next_state(AMENDMENT_TABLE, A.IN_DOUBT, AE.FOUND) is A.ACCEPTED
    with pytest.raises(IllegalTransition):
        next_state(AMENDMENT_TABLE, A.IN_DOUBT, AE.OUTCOME_UNKNOWN)
    # a cancel is never sent again by itself: no step leads back to PENDING_SUBMIT
    assert [k for k, n in AMENDMENT_TABLE.items() if n is A.PENDING_SUBMIT] == [(NONE, AE.CREATED)]
    assert set(ts.REQUEST_OUTCOME) == {AE.ACKED, AE.FOUND, AE.REJECTED, AE.NOT_SENT, AE.ABSENT}


def test_the_pairs_the_database_accepts_are_the_tables_steps() -> None:
    assert ts.pairs(ORDER_TABLE) == ts.ORDER_TRANSITIONS
    assert (S.PENDING_SUBMIT, S.FILLED) not in ts.ORDER_TRANSITIONS  # a fill needs a number first
    assert (NONE, S.PENDING_SUBMIT) in ts.ORDER_TRANSITIONS
    assert ("PENDING_SUBMIT", "ERROR") in ts.AMENDMENT_TRANSITIONS
    assert all(a != b for a, b in ts.ORDER_TRANSITIONS | ts.AMENDMENT_TRANSITIONS)
