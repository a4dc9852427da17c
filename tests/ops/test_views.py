"""The monitor.* views (db/migrations/0013) on a seeded trading day, read as sm_readonly."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from stock_manager.dashboard.alerts import ALERT_TRANSITIONS
from stock_manager.services.strategy.rules.positions import FillRow, fold
from stock_manager.shared.calendar import load_calendar
from stock_manager.shared.clock import KST
from stock_manager.shared.db.pool import connect
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

    def kinds_at(at: str) -> set[str]:
        _set_market_time(seeded.admin_url, at)
        return {r["kind"] for r in _q(url, "SELECT kind FROM monitor.alert_conditions")}

    assert "StalePrice" in kinds_at("2026-11-23T14:00:00+09:00")  # a Monday
    kinds = kinds_at("2026-11-23T18:00:00+09:00")
    assert "StalePrice" not in kinds
    assert "ServiceDown" in kinds  # a dead service is news at any hour

    with psycopg.connect(seeded.admin_url, autocommit=True) as conn:
        conn.execute("INSERT INTO ops.trading_days (trade_date, kind) VALUES ('2026-12-25', 'CLOSED')")  # 성탄절
        conn.execute("INSERT INTO ops.trading_day_overrides (trade_date, kind, open_time, close_time, reason) "
                     "VALUES ('2026-11-19', 'SHIFTED', '10:00', '16:30', '수능')")
    assert "StalePrice" not in kinds_at("2026-12-25T11:00:00+09:00")  # a Friday, but a holiday
    assert "StalePrice" not in kinds_at("2026-11-19T09:30:00+09:00")  # the CSAT day opens at 10:00
    assert "StalePrice" in kinds_at("2026-11-19T10:00:00+09:00")
    assert "StalePrice" in kinds_at("2026-11-19T16:00:00+09:00")  # past 15:30, before the day's own close
    assert "StalePrice" not in kinds_at("2026-11-19T16:30:00+09:00")


# (library row, operator override, KIS's opnd_yn) on one date each: every way the layers combine
LAYERS: dict[date, tuple[tuple[str, str | None, str | None] | None,
                         tuple[str, str | None, str | None] | None, str | None]] = {
    date(2026, 12, 25): (("CLOSED", None, None), None, None),  # a holiday
    date(2026, 1, 2): (("SHIFTED", "10:00", "15:30"), None, None),  # the year's first day
    date(2026, 11, 19): (("REGULAR", "09:00", "15:30"), ("SHIFTED", "10:00", "16:30"), None),  # CSAT
    date(2026, 6, 3): (("CLOSED", None, None), ("REGULAR", "09:00", "15:30"), None),  # the operator reopens
    date(2026, 6, 4): (("REGULAR", "09:00", "15:30"), ("CLOSED", None, None), None),  # the operator closes
    date(2026, 12, 24): (("REGULAR", "09:00", "15:30"), None, "N"),  # KIS closes
    date(2026, 5, 25): (("CLOSED", None, None), None, "Y"),  # KIS opens: the regular hours
    date(2026, 11, 18): (None, ("CLOSED", None, None), "Y"),
    date(2026, 11, 20): (("SHIFTED", "10:00", "16:30"), None, "Y"),  # KIS's Y keeps the day's hours
    date(2026, 11, 24): (None, None, None),  # not covered: the weekday rule
    date(2026, 11, 22): (None, None, None),  # a Sunday
}
TIMES = (time(8, 59, 59), time(9), time(9, 59, 59), time(10), time(15, 29, 59), time(15, 30), time(16, 29, 59),
         time(16, 30))


async def test_market_open_agrees_with_the_layered_calendar(db: TestDb) -> None:
    async with await connect(db.admin_url) as admin, await connect(db.url("readonly")) as reader:
        await admin.execute("INSERT INTO ops.heartbeats (service, instance_id, db_role, pid, host, status, beat_ts, "
                            "market_ts) VALUES ('pricesync', 'h', 'sm_pricesync', 1, 'h', 'RUNNING', "
                            "clock_timestamp(), now())")
        for day, (lib, ovr, kis) in LAYERS.items():
            if lib:
                await admin.execute("INSERT INTO ops.trading_days (trade_date, kind, open_time, close_time) "
                                    "VALUES (%s, %s, %s, %s)", (day, *lib))
            if ovr:
                await admin.execute("INSERT INTO ops.trading_day_overrides (trade_date, kind, open_time, close_time) "
                                    "VALUES (%s, %s, %s, %s)", (day, *ovr))
            if kis:
                await admin.execute("INSERT INTO ops.kis_holiday_checks (trade_date, opnd_yn) VALUES (%s, %s)",
                                    (day, kis))
        calendar = await load_calendar(reader, min(LAYERS), max(LAYERS))
        for day in LAYERS:
            session = calendar.session(day)
            for t in TIMES:
                at = datetime.combine(day, t, KST)
                await admin.execute("UPDATE ops.heartbeats SET market_ts = %s", (at,))
                row = await (await reader.execute("SELECT monitor.market_open() AS open")).fetchone()
                assert row is not None
                assert row["open"] is (session is not None and session.open <= t < session.close), at
