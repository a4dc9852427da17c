"""The vocabularies of manual orders and position checks, enforced by the database as in Python."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from stock_manager.shared.trade_states import OrderOrigin, PositionVerdict
from tests.support.pg import TestDb

_ORDER = ("INSERT INTO trade.orders (intent_id, origin, trade_date, symbol, side, qty, order_type, ord_dvsn, status)"
          " VALUES (%s, %s, current_date, '005930', 'BUY', 1, 'MKT', '01', 'PENDING_SUBMIT')")


def test_position_verdicts_are_the_pythons(db: TestDb) -> None:
    with psycopg.connect(db.url("execution"), autocommit=True) as conn:
        for v in PositionVerdict:
            conn.execute("INSERT INTO trade.position_checks (verdict, symbols) VALUES (%s, 0)", (v.value,))
        with pytest.raises(errors.CheckViolation, match="verdict"):
            conn.execute("INSERT INTO trade.position_checks (verdict, symbols) VALUES ('FINE', 0)")
    with psycopg.connect(db.url("strategy"), autocommit=True) as conn, \
            pytest.raises(errors.InsufficientPrivilege):
        conn.execute("INSERT INTO trade.position_checks (verdict, symbols) VALUES ('AGREE', 0)")


def test_a_manual_order_has_no_intent_and_every_other_order_has_one(db: TestDb) -> None:
    assert {o.value for o in OrderOrigin} == {"INTENT", "MANUAL"}
    with psycopg.connect(db.url("execution"), autocommit=True) as conn:
        conn.execute(_ORDER, (None, OrderOrigin.MANUAL.value))
        with pytest.raises(errors.CheckViolation, match="orders_origin_has_intent"):
            conn.execute(_ORDER, (None, OrderOrigin.INTENT.value))
        with pytest.raises(errors.CheckViolation, match="origin"):
            conn.execute(_ORDER, (None, "HTS"))
