"""Execution as a real process against the real simulator and database."""

from __future__ import annotations

from tests.execution.conftest import Stack


def _intent(stack: Stack, intent_id: str) -> dict[str, object]:
    return stack.sql("SELECT * FROM trade.order_intents WHERE intent_id = %s", (intent_id,))[0]


def test_a_market_buy_is_sent_once_filled_and_recorded(stack: Stack) -> None:
    stack.start()
    iid = stack.intent("buy-1", "005930", "BUY", 10)
    order = stack.wait(lambda: stack.sql("SELECT * FROM trade.orders WHERE intent_id = %s AND status = 'FILLED'",
                                         (iid,)), what="the order to fill")[0]
    assert _intent(stack, iid)["status"] == "SUBMITTED"
    broker = stack.broker_orders()
    assert len(broker) == 1
    assert broker[0]["odno"] == order["broker_order_no"]
    fills = stack.sql("SELECT qty, price FROM trade.fills WHERE order_id = %s", (order["order_id"],))
    assert sum(f["qty"] for f in fills) == broker[0]["filled_qty"] == 10
    assert sum(f["qty"] * f["price"] for f in fills) == broker[0]["filled_amt"]
    kinds = {e["kind"] for e in stack.sql("SELECT kind FROM ops.events WHERE service = 'execution'")}
    assert "OrderSubmitted" in kinds


def test_malformed_intents_are_rejected_with_a_reason_and_never_sent(stack: Stack) -> None:
    stack.start()
    bad = {
        stack.intent("off-tick", "005930", "BUY", 1, "LMT", 71_050): "off the tick grid",
        stack.intent("unknown", "999999", "BUY", 1): "unknown symbol",
        stack.intent("too-high", "005930", "BUY", 1, "LMT", 95_000): "above the daily upper limit",
    }
    stack.wait(lambda: all(_intent(stack, i)["status"] == "REJECTED" for i in bad), what="rejections")
    for iid, reason in bad.items():
        assert reason in str(_intent(stack, iid)["status_reason"])
    assert stack.broker_orders() == []
    assert len(stack.sql("SELECT 1 FROM ops.events WHERE kind = 'IntentRejected'")) == 3
    assert stack.sql("SELECT count(*) AS n FROM trade.orders")[0]["n"] == 0


def test_halted_blocks_entries_but_never_exits(stack: Stack) -> None:
    stack.start()
    buy = stack.intent("buy", "035720", "BUY", 5)
    stack.wait(lambda: stack.sql("SELECT 1 FROM trade.orders WHERE intent_id = %s AND status = 'FILLED'", (buy,)))
    stack.sql("UPDATE trade.trading_state SET state = 'HALTED', reason = 'test', changed_by = 'test'",
              role="strategy")
    entry = stack.intent("entry-while-halted", "035720", "BUY", 1)
    exit_ = stack.intent("exit-while-halted", "035720", "SELL", 5)
    stack.wait(lambda: _intent(stack, entry)["status"] == "REJECTED" and _intent(stack, exit_)["status"] == "SUBMITTED")
    assert "HALTED" in str(_intent(stack, entry)["status_reason"])
    sides = sorted(o["side"] for o in stack.broker_orders())
    assert sides == ["BUY", "SELL"]


def test_a_broker_rejection_ends_rejected_with_kis_message(stack: Stack) -> None:
    stack.start()
    # 100M won of cash; a market buy reserves at the upper limit, so this cannot be afforded
    iid = stack.intent("too-big", "005930", "BUY", 1_500)
    stack.wait(lambda: _intent(stack, iid)["status"] == "REJECTED")
    reason = str(_intent(stack, iid)["status_reason"])
    assert "APBK0952" in reason or "not enough cash" in reason
    order = stack.sql("SELECT status, raw FROM trade.orders WHERE intent_id = %s", (iid,))
    if order:  # the broker said no: its message is kept
        assert order[0]["status"] == "REJECTED"
        assert order[0]["raw"]["reject"]["msg_cd"] == "APBK0952"


def test_cancel_of_an_open_order_and_of_a_filled_one(stack: Stack) -> None:
    stack.start()
    resting = stack.intent("resting", "005930", "BUY", 3, "LMT", 60_000)
    filled = stack.intent("filled", "005930", "BUY", 2)
    stack.wait(lambda: stack.sql("SELECT 1 FROM trade.orders WHERE intent_id = %s AND status = 'SUBMITTED'",
                                 (resting,)) and stack.sql(
        "SELECT 1 FROM trade.orders WHERE intent_id = %s AND status = 'FILLED'", (filled,)))
    for key, iid in (("c-resting", resting), ("c-filled", filled)):
        stack.sql(
            "INSERT INTO trade.cancel_requests (request_key, order_id, intent_id, symbol, reason)"
            " SELECT %s, order_id, intent_id, symbol, 'test' FROM trade.orders WHERE intent_id = %s",
            (key, iid), role="strategy")
    stack.wait(lambda: stack.sql("SELECT 1 FROM trade.orders WHERE intent_id = %s AND status = 'CANCELLED'",
                                 (resting,)), what="the cancel")
    reqs = {r["request_key"]: r for r in stack.sql("SELECT * FROM trade.cancel_requests")}
    stack.wait(lambda: stack.sql("SELECT 1 FROM trade.cancel_requests WHERE request_key = 'c-filled'"
                                 " AND status = 'FAILED'"))
    reqs = {r["request_key"]: r for r in stack.sql("SELECT * FROM trade.cancel_requests")}
    assert reqs["c-resting"]["status"] == "DONE"
    assert "FILLED" in reqs["c-filled"]["status_reason"]
    order = stack.sql("SELECT * FROM trade.orders WHERE intent_id = %s", (resting,))[0]
    assert order["cancelled_qty"] == 3
    assert order["filled_qty"] == 0
    amend = stack.sql("SELECT * FROM trade.order_amendments")
    assert len(amend) == 1
    assert amend[0]["status"] == "ACCEPTED"
    cancel_at_broker = [o for o in stack.broker_orders() if o["orgn_odno"] == order["broker_order_no"]]
    assert [o["odno"] for o in cancel_at_broker] == [amend[0]["broker_order_no"]]


def test_two_executions_never_submit_an_intent_twice(stack: Stack) -> None:
    stack.start()
    stack.start()
    ids = [stack.intent(f"many-{i}", "005930", "BUY", 1, "LMT", 60_000 + 100 * (i % 50)) for i in range(120)]
    stack.wait(lambda: stack.sql("SELECT count(*) AS n FROM trade.order_intents WHERE status = 'SUBMITTED'")[0]["n"]
               == len(ids), within=60, what="all intents submitted")
    broker = stack.broker_orders()
    assert len(broker) == len(ids)
    ours = stack.sql("SELECT broker_order_no, claimed_by FROM trade.orders")
    assert sorted(o["broker_order_no"] for o in ours) == sorted(b["odno"] for b in broker)
    assert len({o["claimed_by"] for o in ours}) == 2, "both processes should have taken a share"
