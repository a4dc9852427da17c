"""The report's arithmetic without a database: the equity curve, a trip's exits, the fallback figures."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal as D
from typing import Any

from stock_manager.report.model import Fill, Trip, equity_curve, exits_of, figures
from stock_manager.report.page import inputs, price, won
from stock_manager.services.strategy.rules.summary import max_drawdown
from stock_manager.shared.clock import KST

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=KST)


def trip(i: int, pnl: int, *, closes_at_min: int | None = None, fills: tuple[Fill, ...] = ()) -> Trip:
    exit_ts = T0 + timedelta(minutes=closes_at_min if closes_at_min is not None else 10 * i + 5)
    return Trip(trip_id=i, symbol="005930", name="삼성전자", entry_ts=T0 + timedelta(minutes=10 * i), exit_ts=exit_ts,
                qty=10, avg_entry_price=D(70000), avg_exit_price=D(70100), fees=D(10), taxes=D(20), pnl=D(pnl),
                exit_reason="TAKE_PROFIT", forced=False, strategy_version="breakout-v1", params_version="p1",
                entry_reason="SIGNAL_BREAKOUT", score=D("1.2"), entry_inputs={}, filters=None, fills=fills)


def fill(fill_id: int, side: str, qty: int, px: int, intent: str, reason: str, **ctx: Any) -> Fill:
    return Fill(fill_id=fill_id, side=side, qty=qty, price=D(px), fee=D(0), tax=D(0),
                ts=T0 + timedelta(minutes=fill_id), intent_id=intent, intent_type=None, reason=reason, context=ctx)


def test_the_curve_steps_at_each_close_and_its_drawdown_is_the_summarys() -> None:
    # equity 5,000 (peak) -> 3,000 -> -4,000 -> -3,000: drawdowns 0, 2,000, 9,000, 8,000
    pts = equity_curve([trip(1, 5_000), trip(2, -2_000), trip(3, -7_000), trip(4, 1_000)])
    assert [(p.equity, p.drawdown) for p in pts] == [(0, 0), (5_000, 0), (3_000, 2_000), (-4_000, 9_000),
                                                      (-3_000, 8_000)]
    assert pts[0].ts == T0 + timedelta(minutes=10) and pts[1].ts == T0 + timedelta(minutes=15)
    rng = random.Random(17)
    for _ in range(50):
        trips = [trip(i, rng.randint(-5_000, 5_000), closes_at_min=rng.randint(0, 400)) for i in range(12)]
        in_order = sorted(trips, key=lambda t: (t.exit_ts, t.trip_id))
        curve = equity_curve(trips)  # given in any order, walked in closing order
        assert max(p.drawdown for p in curve) == max_drawdown([t.pnl for t in in_order])
        assert curve[-1].equity == sum(t.pnl for t in trips)
    assert equity_curve([]) == []


def test_exits_are_the_sell_intents_with_the_rule_that_fired() -> None:
    fills = (fill(1, "BUY", 20, 70000, "i1", "SIGNAL_BREAKOUT"),
             fill(2, "SELL", 6, 72100, "i2", "TAKE_PROFIT", rule="TAKE_PROFIT", pnl_pct=3.0, strategy="breakout"),
             fill(3, "SELL", 4, 72000, "i2", "TAKE_PROFIT", rule="TAKE_PROFIT", pnl_pct=3.0),
             fill(4, "SELL", 10, 71500, "i3", "TRAILING_STOP", rule="TRAILING_STOP", drop_pct=-1.2, gone=None))
    got = exits_of(fills)
    assert [(e.reason, e.qty, e.avg_price) for e in got] == [("TAKE_PROFIT", 10, D("72060.00")),
                                                             ("TRAILING_STOP", 10, D("71500.00"))]
    assert got[0].inputs == {"pnl_pct": 3.0} and got[1].inputs == {"drop_pct": -1.2}  # no bookkeeping, no nulls
    assert got[0].ts == T0 + timedelta(minutes=2)


def test_without_a_stored_summary_the_figures_come_from_the_trips() -> None:
    f = figures([trip(2, -2_000), trip(1, 5_000), trip(3, -7_000), trip(4, 1_000)], None)
    assert not f.stored and f.notes == {}
    assert (f.realized_pnl, f.trades, f.wins, f.losses) == (D(-3_000), 4, 2, 2)
    assert f.win_rate == D("0.5") and f.profit_factor == D("0.6667") and f.max_drawdown == D(9_000)
    assert f.max_loss == D(-7_000) and f.fees == D(40) and f.taxes == D(80)
    stored = {"realized_pnl": D(1), "trades_count": 1, "wins": 1, "losses": 0, "win_rate": D(1), "avg_pnl": D(1),
              "max_loss": None, "profit_factor": None, "max_drawdown": D(0), "fees": D(0), "taxes": D(0),
              "notes": {"suggestions": []}}
    assert figures([trip(1, 5_000)], stored).stored and figures([trip(1, 5_000)], stored).realized_pnl == 1


def test_numbers_read_the_way_a_trader_writes_them() -> None:
    assert (won(D("27222.00")), won(D(-11910)), won(0), won(None), won(D(1121), sign=False)) == (
        "+27,222", "-11,910", "0", "-", "1,121")
    assert (price(D("118000.0000")), price(D("41.25")), price(None)) == ("118,000", "41.25", "-")
    assert inputs({"breakout_pct": 0.8123456, "above_short": True, "price": "118000", "turnover": 5.2e9,
                   "volume": 1200, "why": "no_trend", "n": 3.0}) == (
        "breakout_pct=0.8123 · above_short=True · price=118,000 · turnover=5,200,000,000 · volume=1200 · "
        "why=no_trend · n=3")
