"""A trading day in the tables, written as the owner: what the monitor views are checked against.

Market time is 2026-11-23 14:00 KST (the services' heartbeats say so), whatever the wall clock.

- 000660: bought 10 @ 118,000 at 09:10, sold 10 @ 121,000 at 10:30   -> round trip +27,222
- 035720: bought 20 @ 42,000 at 09:40, sold 20 @ 41,500 at 11:15     -> round trip -11,910
- 005930: bought 30 @ 70,000 at 13:05, sold 10 @ 70,800 at 13:40     -> open 20 @ 70,000, realized +6,163
- 035720: bought 15 @ 41,200 at 13:50                                  -> open 15, realized -92, price STALE
- an open order (000660 BUY 5 LMT 119,500), an open intent, reconciliation events, a risk violation;
  execution's heartbeat is 60 s old (down).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from stock_manager.shared.clock import KST

MARKET_NOW = datetime(2026, 11, 23, 14, 0, tzinfo=KST)
TRADE_DATE = MARKET_NOW.date()

REALIZED_CLOSED = Decimal(27222 - 11910)
REALIZED_OPEN = Decimal(6163 - 92)
UNREALIZED_NET = Decimal(16947 - 4322)
TOTAL = REALIZED_CLOSED + REALIZED_OPEN + UNREALIZED_NET


def at(hh: int, mm: int) -> datetime:
    return datetime(2026, 11, 23, hh, mm, tzinfo=KST)


def touch_heartbeats(url: str) -> None:
    """Keep the seeded services alive (a beat is fresh for 20 s); execution stays down."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE ops.heartbeats SET beat_ts = clock_timestamp() WHERE service <> 'execution'")


def _intent(conn: psycopg.Connection[Any], key: str, symbol: str, side: str, qty: int, *, status: str = "SUBMITTED",
            order_type: str = "MKT", limit_price: Decimal | None = None, created_ago_s: float = 60) -> str:
    intent_type = "ENTRY" if side == "BUY" else "EXIT_FULL"
    row = conn.execute(
        "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price, "
        "created_ts) VALUES (%s, %s, %s, %s, %s, %s, %s, clock_timestamp() - make_interval(secs => %s)) "
        "RETURNING intent_id",
        (key, symbol, side, intent_type, qty, order_type, limit_price, created_ago_s)).fetchone()
    assert row is not None
    intent_id = str(row["intent_id"])
    if status != "NEW":
        conn.execute("UPDATE trade.order_intents SET status = 'PROCESSING' WHERE intent_id = %s", (intent_id,))
        conn.execute("UPDATE trade.order_intents SET status = %s WHERE intent_id = %s", (status, intent_id))
    return intent_id


def _order(conn: psycopg.Connection[Any], intent_id: str, odno: str, symbol: str, side: str, qty: int, *,
           status: str, filled: int, order_type: str = "MKT", limit_price: Decimal | None = None,
           latency_ms: tuple[int, int] = (15, 80)) -> int:
    row = conn.execute(
        "INSERT INTO trade.orders (intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn, limit_price, "
        "status, attempt_ts) SELECT %s, %s, %s, %s, %s, %s, %s, %s, 'PENDING_SUBMIT', "
        "i.created_ts + make_interval(secs => %s) FROM trade.order_intents i WHERE i.intent_id = %s "
        "RETURNING order_id",
        (intent_id, TRADE_DATE, symbol, side, qty, order_type, "01" if order_type == "MKT" else "00", limit_price,
         latency_ms[0] / 1000, intent_id)).fetchone()
    assert row is not None
    order_id = int(row["order_id"])
    conn.execute(
        "UPDATE trade.orders o SET status = 'SUBMITTED', broker_order_no = %s, "
        "submitted_ts = i.created_ts + make_interval(secs => %s) FROM trade.order_intents i "
        "WHERE o.order_id = %s AND i.intent_id = o.intent_id", (odno, latency_ms[1] / 1000, order_id))
    if status != "SUBMITTED":
        conn.execute("UPDATE trade.orders SET status = %s, filled_qty = %s WHERE order_id = %s",
                     (status, filled, order_id))
    return order_id


def _fill(conn: psycopg.Connection[Any], order_id: int, symbol: str, side: str, qty: int, price: int,
          fee: int, tax: int, ts: datetime) -> int:
    row = conn.execute(
        "INSERT INTO trade.fills (order_id, exec_key, symbol, side, qty, price, fee, tax, ts, source) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'NOTICE') RETURNING fill_id",
        (order_id, f"{order_id}:{ts.isoformat()}", symbol, side, qty, price, fee, tax, ts)).fetchone()
    assert row is not None
    return int(row["fill_id"])


def _trip(conn: psycopg.Connection[Any], symbol: str, first: int, last: int, entry: datetime, exit_: datetime,
          qty: int, buy: int, sell: int, fees: int, taxes: int) -> None:
    conn.execute(
        "INSERT INTO trade.round_trips (symbol, first_fill_id, last_fill_id, trade_date, entry_ts, exit_ts, qty, "
        "buy_amount, sell_amount, avg_entry_price, avg_exit_price, fees, taxes, pnl, exit_reason) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'TAKE_PROFIT')",
        (symbol, first, last, TRADE_DATE, entry, exit_, qty, buy, sell, Decimal(buy) / qty, Decimal(sell) / qty,
         fees, taxes, sell - buy - fees - taxes))


def _position(conn: psycopg.Connection[Any], symbol: str, qty: int, avg: int, realized: int, fees: int, taxes: int,
              first: int, last: int, entry: datetime) -> None:
    conn.execute(
        "INSERT INTO trade.position_state (symbol, qty, avg_price, realized_pnl, fees, taxes, entry_price, entry_ts, "
        "worker_id, last_fill_id, trip_first_fill_id, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'w1', %s, "
        "%s, 'OPEN')", (symbol, qty, avg, realized, fees, taxes, avg, entry, last, first))


def seed_day(url: str) -> None:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        conn.execute(
            "INSERT INTO market.symbols (symbol, name, market) VALUES ('005930', '삼성전자', 'KOSPI'), "
            "('035720', '카카오', 'KOSPI'), ('000660', 'SK하이닉스', 'KOSPI'), "
            "('091990', '셀트리온헬스케어', 'KOSDAQ')")
        for sym, price, age_s, status in (("005930", 71000, 1, "FRESH"), ("035720", 41000, 300, "STALE"),
                                          ("000660", 120000, 2, "FRESH")):
            conn.execute(
                "INSERT INTO market.prices_best (symbol, price, source, ts, received_ts, updated_ts) VALUES "
                "(%s, %s, 'WS', %s, %s, clock_timestamp() - make_interval(secs => %s))",
                (sym, price, MARKET_NOW, MARKET_NOW, age_s))
            conn.execute(
                "INSERT INTO market.freshness (symbol, source, last_ts, received_ts, lag_ms, status, reason) VALUES "
                "(%s, 'WS', %s, clock_timestamp(), 40, %s, %s)",
                (sym, MARKET_NOW, status, None if status == "FRESH" else "no tick for 300 s"))
        conn.execute("INSERT INTO market.feed_status (feed, connected, notices_subscribed, subscriptions) "
                     "VALUES ('ws', true, true, 3)")
        for svc, pid, age_s in (("pricesync", 101, 1), ("strategy", 102, 2), ("execution", 103, 60)):
            conn.execute(
                "INSERT INTO ops.heartbeats (service, instance_id, db_role, pid, host, status, beat_ts, market_ts) "
                "VALUES (%s, %s, %s, %s, 'test-host', 'RUNNING', clock_timestamp() - make_interval(secs => %s), %s)",
                (svc, f"test-host-{svc}", f"sm_{svc}", pid, age_s, MARKET_NOW))

        # 000660: a closed winning round trip
        a1 = _order(conn, _intent(conn, "a-buy", "000660", "BUY", 10), "0000000001", "000660", "BUY", 10,
                    status="FILLED", filled=10)
        fa1 = _fill(conn, a1, "000660", "BUY", 10, 118000, 177, 0, at(9, 10))
        a2 = _order(conn, _intent(conn, "a-sell", "000660", "SELL", 10), "0000000002", "000660", "SELL", 10,
                    status="FILLED", filled=10)
        fa2 = _fill(conn, a2, "000660", "SELL", 10, 121000, 181, 2420, at(10, 30))
        _trip(conn, "000660", fa1, fa2, at(9, 10), at(10, 30), 10, 1180000, 1210000, 358, 2420)
        # 035720: a closed losing round trip
        b1 = _order(conn, _intent(conn, "b-buy", "035720", "BUY", 20), "0000000003", "035720", "BUY", 20,
                    status="FILLED", filled=20, latency_ms=(20, 120))
        fb1 = _fill(conn, b1, "035720", "BUY", 20, 42000, 126, 0, at(9, 40))
        b2 = _order(conn, _intent(conn, "b-sell", "035720", "SELL", 20), "0000000004", "035720", "SELL", 20,
                    status="FILLED", filled=20, latency_ms=(25, 300))
        fb2 = _fill(conn, b2, "035720", "SELL", 20, 41500, 124, 1660, at(11, 15))
        _trip(conn, "035720", fb1, fb2, at(9, 40), at(11, 15), 20, 840000, 830000, 250, 1660)
        # 005930: open 20 after a partial exit
        c1 = _order(conn, _intent(conn, "c-buy", "005930", "BUY", 30), "0000000005", "005930", "BUY", 30,
                    status="FILLED", filled=30)
        fc1 = _fill(conn, c1, "005930", "BUY", 30, 70000, 315, 0, at(13, 5))
        c2 = _order(conn, _intent(conn, "c-sell", "005930", "SELL", 10), "0000000006", "005930", "SELL", 10,
                    status="FILLED", filled=10)
        fc2 = _fill(conn, c2, "005930", "SELL", 10, 70800, 106, 1416, at(13, 40))
        _position(conn, "005930", 20, 70000, 6163, 421, 1416, fc1, fc2, at(13, 5))
        # 035720 again: open 15, its price stale
        d1 = _order(conn, _intent(conn, "d-buy", "035720", "BUY", 15), "0000000007", "035720", "BUY", 15,
                    status="FILLED", filled=15)
        fd1 = _fill(conn, d1, "035720", "BUY", 15, 41200, 92, 0, at(13, 50))
        _position(conn, "035720", 15, 41200, -92, 92, 0, fd1, fd1, at(13, 50))
        # an order resting at the broker, and an intent not yet taken up
        _order(conn, _intent(conn, "e-buy", "000660", "BUY", 5, order_type="LMT", limit_price=Decimal(119500)),
               "0000000008", "000660", "BUY", 5, status="SUBMITTED", filled=0, order_type="LMT",
               limit_price=Decimal(119500))
        _intent(conn, "f-buy", "091990", "BUY", 7, status="NEW", created_ago_s=3)

        events: list[tuple[str, str, str, str, str | None, dict[str, Any]]] = [
            ("execution", "INFO", "ServiceStarted", "execution started", None, {"pid": 103}),
            ("execution", "WARN", "ReconcileCorrection", "order 3: added 5@42000 the notices never reported",
             "035720", {"order_id": b1, "correction": "missing_fill"}),
            ("execution", "WARN", "InDoubtResolved", "order 5 found at the broker as 0000000005", "005930",
             {"order_id": c1, "outcome": "found"}),
            ("execution", "WARN", "UnknownBrokerOrder", "broker order 0000000099 (BUY 1 005930) is not ours", "005930",
             {"broker_order_no": "0000000099"}),
            ("strategy", "WARN", "RiskViolation", "091990: daily loss limit reached; entry blocked", "091990",
             {"rule": "daily_loss_limit"}),
            ("strategy", "INFO", "PositionEntered", "w1 entered 035720 x15", "035720", {}),
        ]
        for svc, level, kind, msg, symbol, data in events:
            conn.execute("INSERT INTO ops.events (service, db_role, level, kind, message, symbol, market_ts, data) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                         (svc, f"sm_{svc}", level, kind, msg, symbol, MARKET_NOW, Jsonb(data)))
        conn.commit()
