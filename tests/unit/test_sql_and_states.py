from __future__ import annotations

import pytest

from stock_manager.shared import trade_states as ts
from stock_manager.shared.sql import parse_queries, shared_queries


def test_named_blocks_parse_and_unknown_names_say_where() -> None:
    q = parse_queries("-- name: one\nSELECT 1;\n\n-- name: two\nSELECT %(x)s;\n", "f.sql")
    assert q["one"] == "SELECT 1;" and q["two"] == "SELECT %(x)s;" and len(q) == 2
    with pytest.raises(KeyError, match="f.sql"):
        q["three"]


@pytest.mark.parametrize(
    "text", ["SELECT 1", "-- name: a\n", "-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;"]
)
def test_bad_query_files_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="header|empty|twice"):
        parse_queries(text)


def test_shared_queries_load() -> None:
    assert {"upsert_heartbeat", "insert_event"} <= set(shared_queries())


def test_state_tables() -> None:
    assert ts.check(ts.ORDER_TRANSITIONS, "SUBMITTED", "PARTIAL") == "PARTIAL"
    assert ts.check(ts.ORDER_TRANSITIONS, "FILLED", "FILLED") == "FILLED"
    with pytest.raises(ts.IllegalTransition):
        ts.check(ts.ORDER_TRANSITIONS, "FILLED", "CANCELLED")
    # terminal states have no way out
    for table, terminal in ((ts.ORDER_TRANSITIONS, ts.ORDER_TERMINAL), (ts.INTENT_TRANSITIONS, ts.INTENT_TERMINAL)):
        assert not [t for t in table if t[0] in terminal]
    assert ts.OrderStatus.IN_DOUBT in ts.ORDER_OPEN
