"""The schema: migrations are idempotent and forward-only, ownership is enforced by grants,
status transitions by triggers that mirror ``shared/trade_states.py``."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from stock_manager.db import MIGRATIONS_DIR
from stock_manager.shared import trade_states
from stock_manager.shared.db.migrate import MigrationError, discover, migrate
from stock_manager.shared.locks import LOCK_CLASS, Lock
from tests.support.pg import PgServer, TestDb

_SCHEMA_SNAPSHOT = """
SELECT 'col' AS k, table_schema || '.' || table_name || '.' || column_name || ':' || data_type AS v
  FROM information_schema.columns WHERE table_schema IN ('market', 'trade', 'ops')
UNION ALL
SELECT 'con', conrelid::regclass::text || ':' || conname || ':' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace::regnamespace::text IN ('market', 'trade', 'ops')
UNION ALL
SELECT 'idx', schemaname || '.' || indexname FROM pg_indexes WHERE schemaname IN ('market', 'trade', 'ops')
UNION ALL
SELECT 'grant', table_schema || '.' || table_name || ':' || grantee || ':' || privilege_type
  FROM information_schema.role_table_grants WHERE table_schema IN ('market', 'trade', 'ops')
UNION ALL
SELECT 'colgrant', table_schema || '.' || table_name || '.' || column_name || ':' || grantee || ':' || privilege_type
  FROM information_schema.column_privileges WHERE table_schema IN ('market', 'trade', 'ops')
UNION ALL
SELECT 'row', 'migrations:' || count(*)::text FROM ops.schema_migrations
UNION ALL
SELECT 'row', 'transitions:' || count(*)::text FROM trade.order_transitions
ORDER BY 1, 2
"""


def _snapshot(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(_SCHEMA_SNAPSHOT).fetchall()


async def test_migrating_twice_changes_nothing(db: TestDb) -> None:
    before = _snapshot(db.admin_url)
    assert await migrate(db.admin_url) == []
    assert _snapshot(db.admin_url) == before
    assert ("row", f"migrations:{len(discover())}") in before


async def test_two_processes_migrating_at_once_apply_each_file_once(pg_server: PgServer) -> None:
    name = "sm_race_" + __import__("uuid").uuid4().hex[:8]
    janitor = pg_server.janitor(name)
    janitor.init()
    try:
        url = pg_server.url(name)
        results = await asyncio.gather(migrate(url), migrate(url))
        applied = sorted(results, key=len)
        assert applied[0] == []
        assert applied[1] == [m.path.name for m in discover()]
    finally:
        janitor.drop()


async def test_an_edited_migration_is_refused(db: TestDb, tmp_path: Path) -> None:
    for f in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(f, tmp_path / f.name)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="forward-only"):
        await migrate(db.admin_url, tmp_path)


def test_migration_names_and_numbering() -> None:
    names = [m.path.name for m in discover()]
    assert names[0].startswith("0001_")
    assert all(n[4] == "_" for n in names)


def _transitions(url: str, table: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT from_status, to_status FROM trade.{table}").fetchall()
    return {(a, b) for a, b in rows}


def test_python_and_database_transition_tables_agree(db: TestDb) -> None:
    assert _transitions(db.admin_url, "intent_transitions") == set(trade_states.INTENT_TRANSITIONS)
    assert _transitions(db.admin_url, "order_transitions") == set(trade_states.ORDER_TRANSITIONS)
    assert _transitions(db.admin_url, "worker_transitions") == set(trade_states.WORKER_TRANSITIONS)
    assert _transitions(db.admin_url, "cancel_request_transitions") == set(trade_states.CANCEL_REQUEST_TRANSITIONS)
    assert _transitions(db.admin_url, "amendment_transitions") == set(trade_states.AMENDMENT_TRANSITIONS)


def test_python_and_database_order_types_agree(db: TestDb) -> None:
    """Every type in ``OrderType`` is accepted with a price exactly when it is priced, on intents
    and on orders; a type outside it is refused by both tables."""
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        for n, t in enumerate([*trade_states.OrderType, "MOC"]):
            price = 70_000 if t in trade_states.PRICED_ORDER_TYPES else None
            insert = ("INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type,"
                      " limit_price) VALUES (%s, '005930', 'SELL', 'EXIT_FULL', 1, %s, %s) RETURNING intent_id")
            if t not in trade_states.ORD_DVSN:
                with pytest.raises(errors.CheckViolation, match="order_type"):
                    conn.execute(insert, (f"t{n}", t, price))
                continue
            row = conn.execute(insert, (f"t{n}", t, price)).fetchone()
            assert row is not None
            conn.execute("INSERT INTO trade.orders (intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn,"
                         " limit_price, status) VALUES (%s, current_date, '005930', 'SELL', 1, %s, %s, %s,"
                         " 'PENDING_SUBMIT')", (row[0], t, trade_states.ORD_DVSN[t], price))
            with pytest.raises(errors.CheckViolation, match="limit_price"):
                conn.execute(insert, (f"u{n}", t, None if price else 70_000))
        with pytest.raises(errors.CheckViolation, match="order_type"):
            conn.execute("INSERT INTO trade.orders (intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn,"
                         " status) VALUES (gen_random_uuid(), current_date, '005930', 'SELL', 1, 'MOC', '02',"
                         " 'PENDING_SUBMIT')")


# --- ownership -----------------------------------------------------------------------------------

_INTENT = (
    "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price) "
    "VALUES ('k1', '005930', 'BUY', 'ENTRY', 10, 'LMT', 70000) RETURNING intent_id"
)

FORBIDDEN: list[tuple[str, str]] = [
    ("execution", "INSERT INTO market.prices_best (symbol, price, source, ts) VALUES ('005930', 1, 'WS', now())"),
    ("execution", "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type) "
                  "VALUES ('x', '005930', 'BUY', 'ENTRY', 1, 'MKT')"),
    ("execution", "UPDATE trade.order_intents SET qty = 2"),
    ("execution", "UPDATE trade.order_intents SET symbol = '000660'"),
    ("execution", "DELETE FROM trade.order_intents"),
    ("execution", "UPDATE trade.position_state SET qty = 0"),
    ("execution", "INSERT INTO trade.symbol_locks (symbol, worker_id, ttl_s, expires_ts) "
                  "VALUES ('005930', 'w', 10, now())"),
    ("pricesync", "INSERT INTO trade.orders (intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn, status) "
                  "VALUES (gen_random_uuid(), current_date, '005930', 'BUY', 1, 'MKT', '01', 'PENDING_SUBMIT')"),
    ("pricesync", "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type) "
                  "VALUES ('x', '005930', 'BUY', 'ENTRY', 1, 'MKT')"),
    ("pricesync", "UPDATE trade.trading_state SET state = 'HALTED'"),
    ("strategy", "INSERT INTO market.ticks (symbol, ts, price, qty) VALUES ('005930', now(), 1, 1)"),
    ("strategy", "INSERT INTO trade.orders (intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn, status) "
                 "VALUES (gen_random_uuid(), current_date, '005930', 'BUY', 1, 'MKT', '01', 'PENDING_SUBMIT')"),
    ("strategy", "UPDATE trade.order_intents SET status = 'SUBMITTED'"),
    ("strategy", "DELETE FROM trade.fills"),
    ("strategy", "INSERT INTO ops.events (service, level, kind) VALUES ('execution', 'INFO', 'Forged')"),
    ("execution", "INSERT INTO ops.heartbeats (service, instance_id, pid, host, status) "
                  "VALUES ('pricesync', 'x', 1, 'h', 'RUNNING')"),
    ("readonly", "INSERT INTO ops.events (service, level, kind) VALUES ('readonly', 'INFO', 'X')"),
    ("readonly", "INSERT INTO market.symbols (symbol, name, market) VALUES ('005930', 'x', 'KOSPI')"),
    ("readonly", "UPDATE trade.trading_state SET state = 'HALTED'"),
    ("readonly", "DELETE FROM ops.heartbeats"),
    ("readonly", "SELECT * FROM ops.broker_tokens"),
    ("pricesync", "CREATE TABLE market.sneaky (x int)"),
]


@pytest.mark.parametrize(("role", "statement"), FORBIDDEN, ids=[f"{r}:{s[:40]}" for r, s in FORBIDDEN])
def test_forbidden_cross_service_writes_fail_with_permission_error(db: TestDb, role: str, statement: str) -> None:
    with psycopg.connect(db.admin_url, autocommit=True) as admin:
        admin.execute(_INTENT)
    with psycopg.connect(db.url(role)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (f"sm_{role}",)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)


ALLOWED: list[tuple[str, str]] = [
    ("pricesync", "INSERT INTO market.prices_best (symbol, price, source, ts) VALUES ('005930', 70000, 'WS', now())"),
    ("pricesync", "INSERT INTO market.ticks (symbol, ts, price, qty) VALUES ('005930', now(), 70000, 1)"),
    ("pricesync", "SELECT market.ensure_tick_partition(current_date)"),
    ("pricesync", "INSERT INTO ops.events (service, level, kind) VALUES ('pricesync', 'INFO', 'Connected')"),
    ("strategy", _INTENT.replace("'k1'", "'k2'")),
    ("strategy", "UPDATE trade.trading_state SET state = 'HALTED', changed_by = 'test'"),
    ("strategy", "INSERT INTO trade.symbol_locks (symbol, worker_id, ttl_s, expires_ts) "
                 "VALUES ('005930', 'w', 10, now())"),
    ("execution", "UPDATE trade.order_intents SET status = 'PROCESSING', claimed_by = 'me', updated_ts = now()"),
    ("execution", "INSERT INTO ops.heartbeats (service, instance_id, pid, host, status) "
                  "VALUES ('execution', 'x', 1, 'h', 'RUNNING')"),
    ("readonly", "SELECT count(*) FROM trade.orders"),
]


@pytest.mark.parametrize(("role", "statement"), ALLOWED, ids=[f"{r}:{s[:40]}" for r, s in ALLOWED])
def test_owners_may_write_what_they_own(db: TestDb, role: str, statement: str) -> None:
    with psycopg.connect(db.admin_url, autocommit=True) as admin:
        admin.execute(_INTENT)
    with psycopg.connect(db.url(role)) as conn:
        conn.execute(statement)


def test_execution_records_orders_and_fills_but_cannot_rewrite_a_fill(db: TestDb) -> None:
    with psycopg.connect(db.admin_url, autocommit=True) as admin:
        intent_id = admin.execute(_INTENT).fetchone()[0]  # type: ignore[index]
    with psycopg.connect(db.url("execution"), autocommit=True) as conn:
        order_id = conn.execute(
            "INSERT INTO trade.orders (intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn, status) "
            "VALUES (%s, current_date, '005930', 'BUY', 10, 'LMT', '00', 'PENDING_SUBMIT') RETURNING order_id",
            (intent_id,),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO trade.fills (order_id, exec_key, symbol, side, qty, price, ts, source) "
            "VALUES (%s, 'e1', '005930', 'BUY', 4, 70000, now(), 'NOTICE')",
            (order_id,),
        )
        with pytest.raises(errors.UniqueViolation):
            conn.execute(
                "INSERT INTO trade.fills (order_id, exec_key, symbol, side, qty, price, ts, source) "
                "VALUES (%s, 'e1', '005930', 'BUY', 4, 70000, now(), 'RECONCILE')",
                (order_id,),
            )
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("UPDATE trade.fills SET qty = 5")


# --- integrity -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ("('a', '005930', 'BUY', 'ENTRY', 0, 'MKT', NULL)", "qty"),
        ("('a', '005930', 'SELL', 'ENTRY', 1, 'MKT', NULL)", "intent_side_matches_type"),
        ("('a', '005930', 'BUY', 'ENTRY', 1, 'LMT', NULL)", "intent_limit_price_when_priced"),
        ("('a', '005930', 'BUY', 'ENTRY', 1, 'MKT', 100)", "intent_limit_price_when_priced"),
        ("('a', '005930', 'SELL', 'EXIT_FULL', 1, 'CLOSE', 100)", "intent_limit_price_when_priced"),
        ("('a', '005930', 'SELL', 'EXIT_FULL', 1, 'AHS', NULL)", "intent_limit_price_when_priced"),
        ("('a', '005930', 'SELL', 'EXIT_FULL', 1, 'MOC', NULL)", "order_type"),
        ("('a', '5930', 'BUY', 'ENTRY', 1, 'MKT', NULL)", "symbol"),
        ("('a', '005930', 'HOLD', 'ENTRY', 1, 'MKT', NULL)", "side"),
    ],
)
def test_malformed_intents_are_refused_at_insert(db: TestDb, values: str, constraint: str) -> None:
    with psycopg.connect(db.url("strategy")) as conn, pytest.raises(errors.CheckViolation, match=constraint):
        conn.execute(
            "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price) "
            f"VALUES {values}"
        )


def test_the_minimal_contract_insert_is_a_valid_new_intent(db: TestDb) -> None:
    with psycopg.connect(db.url("strategy")) as conn:
        row = conn.execute(
            "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price) "
            "VALUES ('min', '005930', 'SELL', 'EXIT_FULL', 3, 'MKT', NULL) RETURNING status, intent_id, created_ts"
        ).fetchone()
    assert row is not None and row[0] == "NEW" and row[1] is not None and row[2] is not None


def test_action_key_makes_a_repeat_harmless(db: TestDb) -> None:
    with psycopg.connect(db.url("strategy"), autocommit=True) as conn:
        conn.execute(_INTENT)
        with pytest.raises(errors.UniqueViolation):
            conn.execute(_INTENT)


def test_illegal_status_transitions_are_rejected_by_the_database(db: TestDb) -> None:
    with psycopg.connect(db.admin_url, autocommit=True) as admin:
        intent_id = admin.execute(_INTENT).fetchone()[0]  # type: ignore[index]
    with psycopg.connect(db.url("execution"), autocommit=True) as conn:
        with pytest.raises(errors.CheckViolation, match="NEW -> SUBMITTED"):
            conn.execute("UPDATE trade.order_intents SET status = 'SUBMITTED' WHERE intent_id = %s", (intent_id,))
        conn.execute("UPDATE trade.order_intents SET status = 'PROCESSING' WHERE intent_id = %s", (intent_id,))
        conn.execute("UPDATE trade.order_intents SET status = 'SUBMITTED' WHERE intent_id = %s", (intent_id,))
        with pytest.raises(errors.CheckViolation, match="SUBMITTED -> NEW"):
            conn.execute("UPDATE trade.order_intents SET status = 'NEW' WHERE intent_id = %s", (intent_id,))
        with pytest.raises(errors.CheckViolation, match="NONE -> FILLED"):
            conn.execute(
                "INSERT INTO trade.orders (intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn, status) "
                "VALUES (%s, current_date, '005930', 'BUY', 10, 'LMT', '00', 'FILLED')",
                (intent_id,),
            )


def test_an_insert_notifies_execution(db: TestDb) -> None:
    with psycopg.connect(db.url("execution"), autocommit=True) as listener:
        listener.execute("LISTEN trade_intents")
        with psycopg.connect(db.url("strategy"), autocommit=True) as conn:
            intent_id = conn.execute(_INTENT).fetchone()[0]  # type: ignore[index]
        note = next(listener.notifies(timeout=5))
        assert note.channel == "trade_intents" and note.payload == str(intent_id)


def test_closed_candles_are_immutable_and_events_append_only(db: TestDb) -> None:
    with psycopg.connect(db.url("pricesync"), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO market.candles (symbol, bucket_ts, open, high, low, close, closed) "
            "VALUES ('005930', date_trunc('minute', now()), 10, 12, 9, 11, true)"
        )
        with pytest.raises(errors.IntegrityConstraintViolation, match="immutable"):
            conn.execute("UPDATE market.candles SET close = 12")
        conn.execute("INSERT INTO ops.events (service, level, kind) VALUES ('pricesync', 'INFO', 'X')")
    with psycopg.connect(db.admin_url, autocommit=True) as admin, pytest.raises(
        errors.InsufficientPrivilege, match="append-only"
    ):
        admin.execute("DELETE FROM ops.events")


def test_every_status_table_is_checked_by_the_one_generic_trigger(db: TestDb) -> None:
    with psycopg.connect(db.admin_url) as conn:
        triggers = conn.execute(
            "SELECT t.tgrelid::regclass::text AS tbl, p.pronamespace::regnamespace::text || '.' || p.proname AS fn"
            "  FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE t.tgname LIKE '%%transition'").fetchall()
        copies = conn.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'check%%transition'").fetchall()
    assert {t for t, _ in triggers} == {"trade.order_intents", "trade.orders", "trade.workers", "trade.cancel_requests",
                                        "trade.order_amendments", "monitor.alert_log"}
    assert {f for _, f in triggers} == {"trade.check_status_transition"}
    assert [c for (c,) in copies] == ["check_status_transition"]
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        conn.execute("INSERT INTO trade.workers (worker_id, instance_id, pid, host, status)"
                     " VALUES ('w1', 'i', 1, 'h', 'IDLE')")
        with pytest.raises(errors.CheckViolation, match="illegal workers status transition IDLE -> HOLD"):
            conn.execute("UPDATE trade.workers SET status = 'HOLD', current_symbol = '005930' WHERE worker_id = 'w1'")


def test_the_tick_partition_lock_takes_its_key_from_the_registry(db: TestDb) -> None:
    with psycopg.connect(db.admin_url) as conn:
        (body,) = conn.execute("SELECT pg_get_functiondef('market.ensure_tick_partition(date)'::regprocedure)"
                               ).fetchone() or ("",)
    assert f"pg_advisory_xact_lock({LOCK_CLASS}, {int(Lock.TICK_PARTITION)})" in body


def test_open_orders_are_the_non_terminal_ones(db: TestDb) -> None:
    with psycopg.connect(db.admin_url) as conn:
        terminal = {s for (s,) in conn.execute("SELECT status FROM trade.order_statuses WHERE terminal").fetchall()}
        open_intents = {s for (s,) in conn.execute(
            "SELECT status FROM trade.intent_statuses WHERE NOT terminal").fetchall()}
    assert terminal == set(trade_states.ORDER_TERMINAL)
    assert open_intents == set(trade_states.INTENT_OPEN)
