"""A user's strategy, written in a temporary folder and installed nowhere, run by the real Strategy
service against the KIS simulator, with PriceSync and Execution as real processes.

Its decisions must reach the broker as intents that say whose they were: its name-version, the
version of the parameters (a row tuned for the day), and its own inputs in the intent's context.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.execution.conftest import Stack
from tests.strategy.test_port import write_strategy
from tests.support.sim import MONDAY_10AM

pytestmark = pytest.mark.timeout(240)


def intents(stack: Stack, **where: str) -> list[dict[str, Any]]:
    rows = stack.sql("SELECT i.*, c.context FROM trade.order_intents i"
                     " LEFT JOIN trade.intent_context c USING (intent_id) ORDER BY i.created_ts")
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def test_a_strategy_loaded_by_path_trades_through_the_service_and_the_simulator(stack: Stack, tmp_path: Path) -> None:
    folder = tmp_path / "my-strategies"  # outside the repository, on no import path
    folder.mkdir()
    path = write_strategy(folder)
    stack.sim.clock(MONDAY_10AM, speed=1)
    stack.sql("INSERT INTO trade.strategy_params (params_version, effective_date, strategy_version, params, note)"
              " VALUES ('any-buyer-t1@2026-11-23-tuned', '2026-11-23', 'any-buyer-t1', %s, 'tuned for the test')",
              (json.dumps({"shares": 3, "hold_s": 5}),))
    stack.start("pricesync")
    stack.start("execution")
    strategy = stack.start("strategy", SM_STRATEGY=f"{path}:AnyBuyer", SM_STRATEGY_WORKERS="1",
                           SM_STRATEGY_SCAN_INTERVAL_S="2", SM_STRATEGY_MONITOR_INTERVAL_S="1")
    entry = stack.wait(lambda: intents(stack, intent_type="ENTRY"), within=120, what="an entry intent")[0]
    assert (entry["strategy_version"], entry["params_version"]) == ("any-buyer-t1", "any-buyer-t1@2026-11-23-tuned")
    assert (entry["qty"], entry["order_type"], entry["reason"]) == (3, "MKT", "SIGNAL_ANY_BUYER")
    assert entry["context"]["strategy"] == "any-buyer" and entry["context"]["why"] == "any"
    # Execution bought it; the strategy's exit (hold 5 s) sells it, and says so
    sell = stack.wait(lambda: intents(stack, side="SELL", symbol=entry["symbol"]), within=90,
                      what="the strategy's exit")[0]
    assert (sell["reason"], sell["qty"], sell["strategy_version"]) == ("TIME_EXIT", 3, "any-buyer-t1")
    assert sell["context"]["strategy"] == "any-buyer" and sell["context"]["held_s"] >= 5
    stack.wait(lambda: [o for o in stack.broker_orders() if o["side"] == "SELL" and o["filled_qty"] == 3],
               within=60, what="the sell to fill at the broker")
    (cfg,) = stack.sql("SELECT data FROM ops.events WHERE kind = 'StrategyConfigured'")
    assert cfg["data"]["strategy"] == "any-buyer" and cfg["data"]["strategy_spec"] == f"{path}:AnyBuyer"
    assert cfg["data"]["params"]["shares"] == 3
    assert strategy.proc is not None and strategy.proc.poll() is None
