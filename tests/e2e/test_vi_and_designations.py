"""A VI on a held stock and a designated stock in the universe, on one accelerated afternoon (issue #12
§2): PriceSync, Strategy and Execution as real processes against the KIS simulator, on one database.

Before the services start, the simulator designates a liquid name 관리종목 (POST /sim/designate), so
it is in the universe and would otherwise be a candidate. From 14:30 at 60x the strategy trades on
short indicators with a two-minute time exit and no other exit that can fire. As soon as a position
is held the market slows to 10x and the simulator starts a static VI on it (POST /sim/vi), so the
time exit falls inside the VI's auction. Then:

- no entry into the designated stock, whose exclusion every scan names with its reason;
- the held stock's VI is in market.vi_state while it lasts and in market.vi_history after;
- nothing of the held stock was cancelled or sent twice: one sell, written during the VI, sent
  (Execution refused nothing), resting in the auction and filled at its uncross.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stock_manager.shared.clock import kst
from stock_manager.soak import next_trading_day
from tests.execution.conftest import Stack
from tests.support.pg import TestDb
from tests.support.sim import SimProcess

DESIGNATED = "005930"  # the simulator's most liquid name (tier 0)
SPEED = 60
SLOW = 10  # during the VI: its two minutes and random end are 12-15 s of wall time
# Short indicators and low filters so the afternoon trades; the only exit that can fire is the
# time exit, two minutes after the entry
PARAMS = {"sma_short": 2, "sma_long": 4, "breakout_bars": 3, "lookback_min": 30, "min_volume": 1000,
          "min_turnover": 10_000_000, "max_price_age_s": 600, "entry_start": "09:00:00", "entry_end": "15:10:00",
          "capital_per_trade": 1_000_000, "stop_loss_pct": 8, "take_profit_pct": 30, "take_profit2_pct": 40,
          "trailing_activate_pct": 30, "trailing_stop_pct": 8, "trend_min_hold_s": 3600, "max_hold_min": 2,
          "reentry_cooldown_min": 120}
IN_VI = ("STATIC", "DYNAMIC", "BOTH", "AUCTION")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    s = SimProcess(log_dir=tmp_path).start()
    try:
        yield s
    finally:
        s.stop()


def iso(at: datetime) -> str:
    return at.isoformat()


def wait(stack: Stack, cond: Callable[[], Any], within: float, what: str) -> Any:
    return stack.wait(cond, within=within, what=what)


@pytest.mark.timeout(300)
def test_a_vi_on_a_held_stock_and_a_designated_stock_in_the_universe(db: TestDb, sim: SimProcess,
                                                                     tmp_path: Path) -> None:
    start = next_trading_day("14:30")
    sim.clock(iso(start), speed=1)
    r = sim.http.post("/sim/designate", json={"symbol": DESIGNATED, "iscd_stat_cls_code": "51"})
    assert r.status_code == 200, r.text
    stack = Stack(db, sim, tmp_path)
    stack.sql("INSERT INTO trade.strategy_params (params_version, effective_date, strategy_version, params, note)"
              " VALUES ('vi-test', %s, 'breakout-v1', %s::jsonb, 'short indicators, a 2-minute time exit')",
              (start.date() - timedelta(days=1), json.dumps(PARAMS)))
    env = {"SM_STRATEGY_WORKERS": "2", "SM_STRATEGY_HEARTBEAT_S": "1", "SM_STRATEGY_INTENT_TIMEOUT_S": "20",
           "KIS_ORDER_TIMEOUT_S": "3", "KIS_READ_TIMEOUT_S": "5", "PYTHONUNBUFFERED": "1"}
    sim.clock(None, speed=SPEED)
    try:
        for name in ("pricesync", "execution", "strategy"):
            stack.start(name, **env)

        # a position, then at once a slower market and a static VI on it
        held = wait(stack, lambda: stack.sql("SELECT symbol, entry_ts FROM trade.position_state WHERE qty > 0"
                                             " ORDER BY entry_ts LIMIT 1"), 120, "a position")[0]
        sym = held["symbol"]
        sim.clock(None, speed=SLOW)
        r = sim.http.post("/sim/vi", json={"symbol": sym, "kind": "static"})
        assert r.status_code == 200, r.text
        vi = r.json()["vi"]
        vi_start, vi_end = datetime.fromisoformat(vi["started"]), datetime.fromisoformat(vi["ends"])
        assert vi_start - held["entry_ts"] < timedelta(minutes=2), (held, vi)  # the time exit comes in the VI

        # PriceSync records it while it lasts
        state = wait(stack, lambda: stack.sql("SELECT * FROM market.vi_state WHERE symbol = %s AND state = ANY(%s)",
                                              (sym, list(IN_VI))), 15, f"{sym}'s VI in market.vi_state")[0]
        assert vi_start - timedelta(seconds=30) <= state["since"] <= vi_end

        # the exit: written once, during the VI, sent, resting in the auction, filled at its uncross
        sold = wait(stack, lambda: stack.sql(
            "SELECT i.intent_id, i.reason, i.status AS intent_status, i.market_ts, o.order_id, o.status, o.qty,"
            " o.filled_qty FROM trade.order_intents i JOIN trade.orders o ON o.intent_id = i.intent_id"
            " WHERE i.symbol = %s AND i.side = 'SELL' AND o.status = 'FILLED'", (sym,)), 60,
            f"{sym}'s exit to fill")[0]
        sim.clock(None, speed=SPEED)
        assert vi_start <= sold["market_ts"] <= vi_end, (sold, vi)
        assert sold["reason"] == "TIME_EXIT" and sold["intent_status"] == "SUBMITTED"
        fills = stack.sql("SELECT ts FROM trade.fills WHERE order_id = %s", (sold["order_id"],))
        assert fills and min(f["ts"] for f in fills) >= vi_end - timedelta(seconds=1), (fills, vi)
        sells = stack.sql("SELECT * FROM trade.order_intents WHERE symbol = %s AND side = 'SELL'", (sym,))
        assert len(sells) == 1, sells
        assert len(stack.sql("SELECT 1 FROM trade.orders WHERE symbol = %s AND side = 'SELL'", (sym,))) == 1
        assert stack.sql("SELECT * FROM trade.cancel_requests WHERE symbol = %s", (sym,)) == []
        broker = [o for o in stack.broker_orders() if o["symbol"] == sym]
        assert [o["kind"] for o in broker if o["side"] == "SELL"] == ["NEW"], broker  # at the broker too
        assert all(o["kind"] == "NEW" for o in broker), broker  # no cancel and no modify of anything

        history = wait(stack, lambda: [h for h in stack.sql(
            "SELECT state, ts FROM market.vi_history WHERE symbol = %s ORDER BY id", (sym,))
            if h["ts"] >= vi_start - timedelta(seconds=30)] or None, 15, "the VI's history")
        states = [h["state"] for h in history]
        assert states[0] in IN_VI and "NONE" in states[1:], history

        # the designated name: listed, priced, never entered, and every scan says why
        (d,) = stack.sql("SELECT designation, warn_code, liquidation_trading FROM market.symbols WHERE symbol = %s",
                         (DESIGNATED,))
        assert d["designation"] == "51", d
        assert stack.sql("SELECT 1 FROM market.prices_best WHERE symbol = %s", (DESIGNATED,))
        assert stack.sql("SELECT * FROM trade.order_intents WHERE symbol = %s", (DESIGNATED,)) == []
        scans = stack.sql("SELECT data FROM ops.events WHERE kind = 'CandidateScanned' ORDER BY event_id")
        assert scans
        refused = [r for s in scans if (r := s["data"].get("refused", {}).get(DESIGNATED)) is not None]
        assert refused and all(r == ["designated_51"] for r in refused), refused[:5]
        print(f"held {sym} from {kst(held['entry_ts']):%H:%M:%S}; VI {kst(vi_start):%H:%M:%S}-{kst(vi_end):%H:%M:%S};"
              f" recorded as {states}; exit {sold['reason']} at {kst(sold['market_ts']):%H:%M:%S}, filled"
              f" {sold['filled_qty']}/{sold['qty']}; {len(refused)} of {len(scans)} scans refused {DESIGNATED}")
    finally:
        stack.stop()
