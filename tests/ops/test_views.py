"""The monitor.* views (db/migrations/0013) on a seeded trading day, read as sm_readonly."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from stock_manager.dashboard.alerts import ALERT_TRANSITIONS
from stock_manager.services.strategy.rules.positions import FillRow, fold
from stock_manager.shared.market_rules import Market, sell_tax_rate
from tests.ops import seed
from tests.support.pg import TestDb

VIEWS = ("service_instances", "services", "trading_state", "price_status", "price_freshness", "open_intents",
         "open_orders", "order_latency", "order_latency_summary", "positions", "fills_today", "fill_pnl_today",
         "pnl_today", "reconciliation_events", "recent_events", "alert_events", "alert_conditions", "alert_log",
         "price_watched", "recent_event_groups")


def _q(url: str, sql: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        cur = conn.execute(sql, params)
        return list(cur.fetchall()) if cur.description else []


def test_every_view_reads_as_readonly_and_the_services(seeded: TestDb) -> None:
    for role in ("readonly", "pricesync", "strategy", "execution", "dashboard"):
        for v in VIEWS:
            _q(seeded.url(role), f"SELECT * FROM monitor.{v} LIMIT 1")


FORBIDDEN = [
    ("readonly", "INSERT INTO monitor.alert_cursor (name, last_event_id) VALUES ('x', 1)"),
    ("readonly", "UPDATE monitor.alert_log SET status = 'SENT'"),
    ("strategy", "INSERT INTO monitor.alert_cursor (name, last_event_id) VALUES ('x', 1)"),
    ("dashboard", "UPDATE trade.trading_state SET state = 'HALTED'"),
    ("dashboard", "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type) "
                  "VALUES ('k', '005930', 'BUY', 'ENTRY', 1, 'MKT')"),
    ("dashboard", "INSERT INTO ops.events (service, level, kind) VALUES ('execution', 'INFO', 'X')"),
    ("dashboard", "DELETE FROM monitor.alert_log"),
    ("dashboard", "SELECT * FROM ops.broker_tokens"),
]


def test_readonly_writes_nothing_and_the_dashboard_only_its_own(seeded: TestDb) -> None:
    for role, sql in FORBIDDEN:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _q(seeded.url(role), sql)


def test_the_dashboard_role_writes_its_own_rows(seeded: TestDb) -> None:
    url = seeded.url("dashboard")
    _q(url, "INSERT INTO ops.events (service, level, kind) VALUES ('dashboard', 'INFO', 'X')")
    _q(url, "INSERT INTO monitor.alert_cursor (name, last_event_id) VALUES ('events', 1)")
    _q(url, "INSERT INTO monitor.alert_log (alert_key, source, kind, severity, throttle_key, message) "
            "VALUES ('k', 'event', 'K', 'warning', 'K', 'm')")
    _q(url, "UPDATE monitor.alert_log SET status = 'FAILED' WHERE alert_key = 'k'")
    with pytest.raises(psycopg.errors.CheckViolation, match="illegal alert_log status transition"):
        _q(url, "UPDATE monitor.alert_log SET status = 'PENDING' WHERE alert_key = 'k'")


def test_alert_transitions_agree_with_python(db: TestDb) -> None:
    rows = _q(db.url("readonly"), "SELECT from_status, to_status FROM monitor.alert_transitions")
    assert {(r["from_status"], r["to_status"]) for r in rows} == ALERT_TRANSITIONS


def test_sell_tax_rate_mirrors_market_rules(db: TestDb) -> None:
    for market in Market:
        for on in (date(2025, 12, 31), date(2026, 1, 1), date(2026, 11, 23)):
            (row,) = _q(db.url("readonly"), "SELECT monitor.sell_tax_rate(%s, %s) AS r", (market.value, on))
            assert row["r"] == sell_tax_rate(market, on), (market, on)


def test_today_is_the_market_date_and_services_are_judged_by_beat_age(seeded: TestDb) -> None:
    url = seeded.url("readonly")
    (st,) = _q(url, "SELECT * FROM monitor.trading_state")
    assert st["trade_date"] == seed.TRADE_DATE and st["state"] == "ACTIVE"
    services = {r["service"]: r for r in _q(url, "SELECT * FROM monitor.services")}
    assert {s: r["state"] for s, r in services.items()} == {
        "pricesync": "alive", "strategy": "alive", "execution": "down"}
    fresh = _q(url, "SELECT * FROM monitor.price_freshness")[0]
    assert (fresh["symbols"], fresh["fresh"], fresh["stale"], fresh["ws_connected"]) == (3, 2, 1, True)


def test_positions_carry_unrealized_pnl_after_exit_costs(seeded: TestDb) -> None:
    rows = {r["symbol"]: r for r in _q(seeded.url("readonly"), "SELECT * FROM monitor.positions")}
    assert set(rows) == {"005930", "035720"}
    s = rows["005930"]
    assert (s["qty"], s["price"], s["unrealized_gross"], s["exit_fee_est"], s["exit_tax_est"]) == (
        20, Decimal(71000), Decimal(20000), Decimal(213), Decimal(2840))
    assert s["unrealized_net"] == Decimal(16947) and s["price_fresh"]
    k = rows["035720"]
    assert k["unrealized_net"] == Decimal(-4322) and not k["price_fresh"]


def test_pnl_today_adds_round_trips_open_trips_and_unrealized(seeded: TestDb) -> None:
    (p,) = _q(seeded.url("readonly"), "SELECT * FROM monitor.pnl_today")
    assert p["trade_date"] == seed.TRADE_DATE
    assert (p["realized_closed"], p["realized_open"]) == (seed.REALIZED_CLOSED, seed.REALIZED_OPEN)
    assert p["unrealized_net"] == seed.UNREALIZED_NET and p["total"] == seed.TOTAL
    assert (p["round_trips"], p["wins"], p["losses"], p["fills"], p["open_positions"]) == (2, 1, 1, 7, 2)
    assert p["fees"] == Decimal(177 + 181 + 126 + 124 + 315 + 106 + 92)


def test_fill_series_books_pnl_the_way_strategy_does(seeded: TestDb) -> None:
    url = seeded.url("readonly")
    series = _q(url, "SELECT * FROM monitor.fill_pnl_today ORDER BY ts, fill_id")
    assert len(series) == 7
    assert series[-1]["cum_realized"] == seed.REALIZED_CLOSED + seed.REALIZED_OPEN
    fills = _q(seeded.admin_url, "SELECT * FROM trade.fills ORDER BY fill_id")
    for symbol in ("000660", "035720", "005930"):
        mine = [FillRow(f["fill_id"], f["order_id"], f["side"], f["qty"], f["price"], f["fee"], f["tax"], f["ts"])
                for f in fills if f["symbol"] == symbol]
        pos = fold(symbol, mine)
        strategy_realized = sum((t.pnl for t in pos.closed_trips), Decimal(0)) + (pos.trip.realized if pos.trip else 0)
        view_realized = sum((r["realized"] for r in series if r["symbol"] == symbol), Decimal(0))
        assert view_realized == strategy_realized, symbol


def test_open_work_latency_and_corrections(seeded: TestDb) -> None:
    url = seeded.url("readonly")
    assert [r["symbol"] for r in _q(url, "SELECT * FROM monitor.open_intents")] == ["091990"]
    (o,) = _q(url, "SELECT * FROM monitor.open_orders")
    assert (o["symbol"], o["status"], o["limit_price"]) == ("000660", "SUBMITTED", Decimal(119500))
    lat = {r["window_name"]: r for r in _q(url, "SELECT * FROM monitor.order_latency_summary")}
    assert lat["1h"]["orders"] == 8 and lat["1h"]["submitted"] == 8
    assert lat["1h"]["submit_p50_ms"] == pytest.approx(80, abs=1)
    assert lat["1h"]["submit_max_ms"] == pytest.approx(300, abs=1)
    assert lat["1h"]["attempt_p50_ms"] == pytest.approx(15, abs=1)
    kinds = [r["kind"] for r in _q(url, "SELECT * FROM monitor.reconciliation_events ORDER BY event_id")]
    assert kinds == ["ReconcileCorrection", "InDoubtResolved", "UnknownBrokerOrder"]


def test_risk_rules_that_block_every_entry_throttle_without_the_symbol(db: TestDb) -> None:
    from stock_manager.services.strategy.workers import GLOBAL_RULES

    (row,) = _q(db.url("readonly"), "SELECT pg_get_viewdef('monitor.alert_events') AS v")
    head = row["v"].split("THEN '*'")[0]
    listed = set(re.findall(r"'(\w+)'::text", head[head.rindex("ARRAY["):]))
    assert listed == GLOBAL_RULES


def test_alert_conditions_name_each_episode(seeded: TestDb) -> None:
    url = seeded.url("readonly")
    conds = {r["kind"]: r for r in _q(url, "SELECT * FROM monitor.alert_conditions")}
    assert set(conds) == {"ServiceDown", "StalePrice"}
    assert conds["StalePrice"]["symbol"] == "035720" and "execution is down" in conds["ServiceDown"]["message"]
    with psycopg.connect(seeded.admin_url, autocommit=True) as conn:
        conn.execute("UPDATE trade.trading_state SET state = 'HALTED', reason = 'test', changed_by = 'me'")
    halted = [r for r in _q(url, "SELECT * FROM monitor.alert_conditions") if r["kind"] == "TradingHalted"]
    assert len(halted) == 1 and "HALTED" in halted[0]["message"]
    events = [r["kind"] for r in _q(url, "SELECT * FROM monitor.alert_events ORDER BY event_id")]
    assert events == ["ReconcileCorrection", "InDoubtResolved", "UnknownBrokerOrder", "RiskViolation"]


def _set_market_time(url: str, at: str) -> None:
    """Move the market's time (what the live services' heartbeats say) without touching their age."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE ops.heartbeats SET market_ts = %s::timestamptz", (at,))


def test_market_open_mirrors_the_session_hours(db: TestDb) -> None:
    from stock_manager.shared.market_rules import SESSION_CLOSE, SESSION_OPEN

    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        conn.execute("INSERT INTO ops.heartbeats (service, instance_id, db_role, pid, host, status, beat_ts, "
                     "market_ts) VALUES ('pricesync', 'h', 'sm_pricesync', 1, 'h', 'RUNNING', clock_timestamp(), "
                     "now())")
    monday = "2026-11-23"
    for at, expected in ((f"{monday}T{SESSION_OPEN:%H:%M}:00+09:00", True), (f"{monday}T08:59:59+09:00", False),
                         (f"{monday}T{SESSION_CLOSE:%H:%M}:00+09:00", False), (f"{monday}T15:29:59+09:00", True),
                         ("2026-11-22T11:00:00+09:00", False)):  # a Sunday
        _set_market_time(db.admin_url, at)
        (row,) = _q(db.url("readonly"), "SELECT monitor.market_open() AS open")
        assert row["open"] is expected, at


def test_stale_price_alerts_only_while_the_market_trades(seeded: TestDb) -> None:
    url = seeded.url("readonly")
    kinds = {r["kind"] for r in _q(url, "SELECT kind FROM monitor.alert_conditions")}
    assert "StalePrice" in kinds  # 14:00 on a Monday
    _set_market_time(seeded.admin_url, "2026-11-23T18:00:00+09:00")
    kinds = {r["kind"] for r in _q(url, "SELECT kind FROM monitor.alert_conditions")}
    assert "StalePrice" not in kinds
    assert "ServiceDown" in kinds  # a dead service is news at any hour


def test_reducing_is_alerted_as_reducing_not_as_a_halt(seeded: TestDb) -> None:
    url = seeded.url("readonly")
    with psycopg.connect(seeded.admin_url, autocommit=True) as conn:
        conn.execute("UPDATE trade.trading_state SET state = 'REDUCING', reason = 'FLATTEN: x', changed_by = 'me'")
    conds = [r for r in _q(url, "SELECT * FROM monitor.alert_conditions") if r["kind"].startswith("Trading")]
    assert [(c["kind"], c["throttle_key"]) for c in conds] == [("TradingReducing", "TradingReducing:REDUCING")]
    assert "REDUCING" in conds[0]["message"]


def test_prices_that_matter_are_counted_apart_from_coverage(seeded: TestDb) -> None:
    url = seeded.url("readonly")
    (p,) = _q(url, "SELECT * FROM monitor.price_freshness")
    # held: 005930 (fresh) and 035720 (stale); 000660 is priced but nobody needs it
    assert (p["watched"], p["watched_fresh"], p["watched_stale"]) == (2, 1, 1)
    assert (p["universe"], p["symbols"], p["fresh"]) == (4, 3, 2)
    with psycopg.connect(seeded.admin_url, autocommit=True) as conn:
        conn.execute("INSERT INTO trade.symbol_locks (symbol, worker_id, ttl_s, expires_ts) "
                     "VALUES ('000660', 'w1', 60, clock_timestamp() + interval '1 minute')")
        conn.execute("INSERT INTO trade.candidates (scan_id, symbol, signal) VALUES "
                     "('00000000-0000-0000-0000-000000000001', '091990', false), "
                     "('00000000-0000-0000-0000-000000000002', '005930', true), "
                     "('00000000-0000-0000-0000-000000000002', '091990', false)")
        conn.execute("INSERT INTO trade.watchlist (symbol, reason) VALUES ('091990', 'operator')")
    watched = {r["symbol"]: r for r in _q(url, "SELECT * FROM monitor.price_watched")}
    assert {s: w["reasons"] for s, w in watched.items()} == {
        "005930": ["candidate", "held"], "035720": ["held"], "000660": ["locked"], "091990": ["watch"]}
    assert {s for s, w in watched.items() if w["fresh"]} == {"005930", "000660"}


def test_repeated_events_fold_into_one_row(db: TestDb) -> None:
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        emit = ("INSERT INTO ops.events (service, db_role, level, kind, message, symbol, ts) "
                "VALUES ('strategy', 'sm_strategy', 'WARN', %s, %s, %s, clock_timestamp() - make_interval(secs => %s))")
        for i in range(71):  # a forced liquidation retried every ~12 s for a quarter of an hour
            conn.execute(emit, ("MandatoryLiquidation", f"sell 005930 attempt {i + 1}", "005930", 900 - i * 12))
            if i % 10 == 0:
                conn.execute(emit, ("MandatoryLiquidation", f"sell 035720 attempt {i // 10 + 1}", "035720",
                                    900 - i * 12))
        conn.execute(emit, ("RiskViolation", "blocked", "005930", 1))
        conn.execute(emit, ("MandatoryLiquidation", "sell 005930 the next day", "005930", -3600))
    rows = _q(db.url("readonly"), "SELECT kind, symbol, message, repeats FROM monitor.recent_event_groups "
                                  "ORDER BY event_id DESC")
    assert [(r["kind"], r["symbol"], r["repeats"]) for r in rows] == [
        ("MandatoryLiquidation", "005930", 1), ("RiskViolation", "005930", 1),
        ("MandatoryLiquidation", "035720", 8), ("MandatoryLiquidation", "005930", 71)]
    assert rows[3]["message"] == "sell 005930 attempt 71"
