from __future__ import annotations

import re
from pathlib import Path

import pytest

import stock_manager
from stock_manager.shared import locks
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


def test_status_sets_are_the_lifecycle_s() -> None:
    assert ts.ORDER_AWAITING_BROKER | ts.ORDER_WORKING == ts.ORDER_OPEN
    assert not ts.ORDER_AWAITING_BROKER & ts.ORDER_WORKING
    assert {ts.IntentStatus.NEW, ts.IntentStatus.PROCESSING} == ts.INTENT_OPEN
    assert ts.STATUS_SETS["open_orders"] == sorted(ts.ORDER_OPEN)


_PACKAGE = Path(stock_manager.__file__).parent
_MIGRATIONS = _PACKAGE / "db" / "migrations"
_LOCK_CALL = re.compile(r"pg_(?:try_)?advisory_(?:xact_)?(?:un)?lock(?:_shared)?\s*\(\s*([^)]*)\)", re.I)
_STATUS_LIST = re.compile(r"IN\s*\(\s*'(?:PENDING_SUBMIT|IN_DOUBT|SUBMITTED|PARTIAL)'"  # an order set
                          r"|IN\s*\(\s*'NEW',\s*'PROCESSING'\s*\)", re.I)  # the open intents


def _sources() -> list[Path]:
    """Package files that hold SQL (queries and Python), less the migrations: a released migration
    never changes, and 0024 onwards take their sets from the statuses tables."""
    return [p for p in sorted(_PACKAGE.rglob("*")) if p.suffix in (".sql", ".py") and _MIGRATIONS not in p.parents]


def test_advisory_lock_keys_come_from_the_registry() -> None:
    """Every advisory lock names its keys by parameters, from stock_manager/shared/locks.py."""
    literal = []
    for path in _sources():
        for m in _LOCK_CALL.finditer(path.read_text(encoding="utf-8")):
            if not m.group(1).lstrip().startswith("%(lock_class"):
                literal.append(f"{path.relative_to(_PACKAGE)}: {m.group(0)}")
    assert not literal, literal
    keys = [int(k) for k in locks.Lock]
    assert len(set(keys)) == len(keys)


def test_status_sets_are_never_spelled_out_in_queries() -> None:
    """The open, awaiting and working sets come from trade_states.STATUS_SETS as parameters."""
    spelled = [f"{p.relative_to(_PACKAGE)}: {m.group(0)}" for p in _sources()
               for m in _STATUS_LIST.finditer(p.read_text(encoding="utf-8"))]
    assert not spelled, spelled
