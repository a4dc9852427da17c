"""Positions the broker agrees with, through a real Execution process against the real simulator.

- A symbol sold out and bought back is sellable again at once: no refusal for lack of shares comes
  from a stale view (KIS lists a symbol sold out today with quantity 0, which is what the stale
  view held).
- An order placed at the broker outside stock-manager (HTS/MTS) is recorded as MANUAL, its fills
  count in the positions, and the account can sell what it bought.
- A difference between our fills and the broker's holdings that nothing explains is DRIFT.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.execution.conftest import Stack
from tests.support.pg import TestDb
from tests.support.sim import MONDAY_10AM, SimProcess


@pytest.fixture(scope="module")
def fast_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    s = SimProcess(log_dir=tmp_path_factory.mktemp("sim")).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def day(db: TestDb, fast_sim: SimProcess, tmp_path: Path) -> Iterator[Stack]:
    fast_sim.clock(MONDAY_10AM, speed=60)
    s = Stack(db, fast_sim, tmp_path)
    try:
        yield s
    finally:
        s.stop()


def _status(stack: Stack, iid: str) -> tuple[str, str | None]:
    row = stack.sql("SELECT status, status_reason FROM trade.order_intents WHERE intent_id = %s", (iid,))[0]
    return row["status"], row["status_reason"]


def _filled(stack: Stack, iid: str) -> bool:
    return bool(stack.sql("SELECT 1 FROM trade.orders WHERE intent_id = %s AND status = 'FILLED'", (iid,)))


def test_buy_sell_buy_back_sell_again_at_speed_60(day: Stack) -> None:
    day.start()
    symbol = "035720"
    for round_ in range(3):
        buy = day.intent(f"buy-{round_}", symbol, "BUY", 7)
        day.wait(lambda b=buy: _filled(day, b), what=f"buy {round_} to fill")
        sell = day.intent(f"sell-{round_}", symbol, "SELL", 7)
        day.wait(lambda s=sell: _filled(day, s), what=f"sell {round_} to fill: {_status(day, sell)}")
        # let the reconciler take the broker's figures, which now list the symbol with 0 sellable
        time.sleep(5)
    refused = day.sql("SELECT message FROM ops.events WHERE kind = 'IntentRejected'")
    assert refused == []
    broker = day.broker_orders()
    assert [o["side"] for o in broker] == ["BUY", "SELL"] * 3
    assert all(o["filled_qty"] == 7 for o in broker)
    held = day.sql("SELECT coalesce(sum(CASE WHEN side = 'BUY' THEN qty ELSE -qty END), 0) AS q FROM trade.fills")
    assert held[0]["q"] == 0


def test_a_sell_beyond_the_holding_is_refused_on_the_brokers_figures(day: Stack) -> None:
    day.start()
    buy = day.intent("buy", "068270", "BUY", 4)
    day.wait(lambda: _filled(day, buy), what="the buy to fill")
    time.sleep(5)  # the reconciler's figures now hold 4 sellable
    too_many = day.intent("sell-too-many", "068270", "SELL", 9)
    day.wait(lambda: _status(day, too_many)[0] == "REJECTED", what="the refusal")
    reason = _status(day, too_many)[1] or ""
    assert "not enough shares to sell: 9 wanted, 4 sellable" in reason and "broker's figures" in reason
    assert [o["side"] for o in day.broker_orders()] == ["BUY"]


def test_a_manual_order_is_recorded_marked_and_counted(day: Stack) -> None:
    day.start()
    first = day.intent("buy-first", "000660", "BUY", 1)  # the account exists at the broker once we trade
    day.wait(lambda: _filled(day, first), what="our buy to fill")
    placed = day.sim.http.post("/sim/manual-order", json={"account": day.account, "symbol": "035420",
                                                           "side": "BUY", "qty": 3})
    assert placed.status_code == 200, placed.text
    odno = placed.json()["odno"]
    manual = day.wait(lambda: day.sql("SELECT * FROM trade.orders WHERE origin = 'MANUAL' AND filled_qty = 3"),
                      what="the manual order to be recorded with its fill")
    assert len(manual) == 1 and manual[0]["intent_id"] is None
    assert int(manual[0]["broker_order_no"]) == int(odno)
    assert day.sql("SELECT count(*) AS n FROM ops.events WHERE kind = 'ManualOrder'")[0]["n"] == 1
    # counted in the positions: the ledger agrees with the broker, and what was bought can be sold
    day.wait(lambda: day.sql("SELECT 1 FROM trade.position_checks WHERE verdict = 'AGREE'"
                             " AND checked_ts > (SELECT max(created_ts) FROM trade.fills)"),
             what="a position check that agrees after the manual fill")
    sell = day.intent("sell-manual", "035420", "SELL", 3)
    day.wait(lambda: _filled(day, sell), what="the sale of the manually bought shares")
    assert day.sql("SELECT count(*) AS n FROM trade.orders WHERE origin = 'MANUAL'")[0]["n"] == 1


def test_an_unexplained_difference_is_drift(day: Stack) -> None:
    day.start()
    first = day.intent("buy", "247540", "BUY", 2)
    day.wait(lambda: _filled(day, first), what="our buy to fill")
    day.wait(lambda: day.sql("SELECT 1 FROM trade.position_checks WHERE verdict = 'AGREE'"), what="agreement")
    # a fill the broker never made (as if a row were restored from an old backup)
    order = day.sql(
        "INSERT INTO trade.orders (intent_id, origin, trade_date, symbol, side, qty, order_type, ord_dvsn, status)"
        " VALUES (NULL, 'MANUAL', '2026-11-23', '247540', 'BUY', 5, 'MKT', '01', 'PENDING_SUBMIT')"
        " RETURNING order_id")[0]["order_id"]
    for status in ("SUBMITTED", "FILLED"):  # by the steps the status trigger allows: a number first
        day.sql("UPDATE trade.orders SET status = %s, filled_qty = 5 WHERE order_id = %s", (status, order))
    day.sql("INSERT INTO trade.fills (order_id, exec_key, symbol, side, qty, price, ts, source)"
            " VALUES (%s, 'restored', '247540', 'BUY', 5, 1000, now(), 'RECONCILE')", (order,))
    drift = day.wait(lambda: day.sql("SELECT diffs FROM trade.position_checks WHERE verdict = 'DRIFT'"),
                     what="drift")
    assert {"symbol": "247540", "broker_qty": 2, "our_qty": 7} in drift[0]["diffs"]
    kinds = [r["kind"] for r in day.sql("SELECT kind FROM ops.events WHERE kind LIKE 'Position%' ORDER BY event_id")]
    assert kinds[-2:] == ["PositionMismatch", "PositionDrift"]  # seen once, then again unchanged
    alert = day.sql("SELECT severity FROM monitor.alert_events WHERE kind = 'PositionDrift'")
    assert alert[0]["severity"] == "critical"
