"""Our fees and tax against the broker's totals: a real Execution process against the real simulator.

- With the fees the simulator charges, our fills' costs equal the balance's ``thdt_tlex_amt`` and
  nothing is recorded.
- With a fee setting the account does not pay, the difference is one ``CostMismatch`` (WARN) event,
  an alert, recorded once however many position checks see it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from stock_manager.services.execution.costs import CostCheck, comparable
from stock_manager.shared.kis.models import BalanceSummary
from tests.execution.conftest import Stack
from tests.support.sim import MONDAY_10AM


def _summary(buy: int, sell: int, costs: int) -> BalanceSummary:
    return BalanceSummary(dnca_tot_amt=0, nxdy_excc_amt=0, prvs_rcdl_excc_amt=0, thdt_buy_amt=buy, thdt_sll_amt=sell,
                          thdt_tlex_amt=costs, scts_evlu_amt=0, tot_evlu_amt=0, nass_amt=0, pchs_amt_smtl_amt=0,
                          evlu_amt_smtl_amt=0, evlu_pfls_smtl_amt=0)


def test_costs_compare_only_over_the_same_trades() -> None:
    s = _summary(700_000, 350_000, 805)
    assert comparable(700_000, 350_000, s)
    assert not comparable(700_000, 0, s)  # a sale's fill still on its way here
    check = CostCheck(date(2026, 11, 23), 800, 805)
    assert check.difference == 5
    assert check.as_json() == {"trade_date": "2026-11-23", "ours": 800, "broker": 805, "difference": 5}


def _start(stack: Stack, **extra: str) -> Stack:
    stack.sim.clock(MONDAY_10AM, speed=60)
    stack.start(**extra)
    return stack


def _filled(stack: Stack, iid: str) -> bool:
    return bool(stack.sql("SELECT 1 FROM trade.orders WHERE intent_id = %s AND status = 'FILLED'", (iid,)))


def _checked_after_last_fill(stack: Stack) -> list[dict[str, object]]:
    return stack.sql("SELECT 1 FROM trade.position_checks WHERE verdict = 'AGREE'"
                     " AND checked_ts > (SELECT max(created_ts) FROM trade.fills)")


def _mismatches(stack: Stack) -> list[dict[str, object]]:
    return stack.sql("SELECT level, data FROM ops.events WHERE kind = 'CostMismatch' ORDER BY event_id")


def test_our_costs_equal_the_brokers_and_nothing_is_recorded(stack: Stack) -> None:
    day = _start(stack)
    buy = day.intent("buy", "035720", "BUY", 7)
    day.wait(lambda: _filled(day, buy), what="the buy to fill")
    sell = day.intent("sell", "035720", "SELL", 7)
    day.wait(lambda: _filled(day, sell), what="the sale to fill")
    day.wait(lambda: _checked_after_last_fill(day), what="a position check after the last fill")
    ours = day.sql("SELECT sum(fee) AS fee, sum(tax) AS tax FROM trade.fills")[0]
    assert ours["fee"] > 0 and ours["tax"] > 0
    broker = day.sim.http.get("/sim/balance", params={"account": day.account}).json()
    assert Decimal(broker["today_fees_and_tax"]) == ours["fee"] + ours["tax"]
    assert _mismatches(day) == []


def test_a_fee_setting_the_account_does_not_pay_is_one_cost_mismatch(stack: Stack) -> None:
    # the simulator charges the default 0.015 %; Execution is told the account pays 0.1 %
    day = _start(stack, KIS_FEE_SCHEDULE='[{"rate": "0.001"}]')
    buy = day.intent("buy", "068270", "BUY", 3)
    day.wait(lambda: _filled(day, buy), what="the buy to fill")
    events = day.wait(lambda: _mismatches(day), what="the cost mismatch")
    fee = day.sql("SELECT sum(fee) AS fee FROM trade.fills")[0]["fee"]
    broker = day.sim.http.get("/sim/balance", params={"account": day.account}).json()["today_fees_and_tax"]
    data = events[0]["data"]
    assert events[0]["level"] == "WARN"
    assert (data["ours"], data["broker"], data["difference"]) == (int(fee), broker, broker - int(fee))
    assert data["difference"] < 0
    # more checks see the same difference: still one event
    day.wait(lambda: len(day.sql("SELECT 1 FROM trade.position_checks")) >= 4, what="more position checks")
    assert len(_mismatches(day)) == 1
    alert = day.sql("SELECT severity FROM monitor.alert_events WHERE kind = 'CostMismatch'")
    assert alert == [{"severity": "warning"}]
