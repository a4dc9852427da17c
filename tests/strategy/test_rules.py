"""The strategy rules as pure functions: no database, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from stock_manager.services.strategy.config import Params
from stock_manager.services.strategy.intents import Fate, judge
from stock_manager.services.strategy.rules.exits import ExitKind, ExitReason, Holding, Quote, evaluate_exit, partial_qty
from stock_manager.services.strategy.rules.indicators import recent_high, sma
from stock_manager.services.strategy.rules.liquidation import (
    LiquidityView,
    after_close,
    flatten_requested,
    in_liquidation_window,
    least_liquid_first,
    liquidation_start,
    remainder,
)
from stock_manager.services.strategy.rules.positions import FillRow, PositionError, fold
from stock_manager.services.strategy.rules.risk import EntryProposal, RiskLimits, RiskSnapshot, check_entry, check_exit
from stock_manager.services.strategy.rules.scan import ScanRow, evaluate, scan, spread_pct, to_store
from stock_manager.services.strategy.rules.sizing import size_entry, upper_limit_of
from stock_manager.services.strategy.rules.summary import TripResult, max_drawdown, profit_factor, summarize
from stock_manager.shared.clock import KST

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=KST)
P = Params()
D = Decimal


def row(**kw: object) -> ScanRow:
    base: dict[str, object] = dict(
        symbol="005930", market="KOSPI", price=D(10_500), bid=D(10_490), ask=D(10_500), volume=500_000,
        turnover=D(5_000_000_000), change_pct=D(5), upper_limit=D(13_000), halted=False, stale_flag=False,
        ts=NOW - timedelta(seconds=5), n_bars=25, sma_short=D(10_350), sma_long=D(10_200), recent_high=D(10_400))
    base.update(kw)
    return ScanRow(**base)  # type: ignore[arg-type]


# --- indicators and the scanner ----------------------------------------------------------------

def test_sma_and_recent_high() -> None:
    closes = [D(x) for x in (10, 9, 8, 7, 6)]
    assert sma(closes, 3) == D(9)
    assert sma(closes, 6) is None
    assert recent_high([D(100), D(5), D(7), D(6)], 2) == D(7)  # the newest bar is not its own breakout level


def test_a_breakout_in_an_uptrend_is_a_signal_with_its_inputs() -> None:
    e = evaluate(row(), P, NOW)
    assert e.passed and e.signal and e.score > 0
    assert e.inputs["breakout_pct"] > 0 and e.inputs["trend_pct"] > 0 and e.inputs["spread_pct"] < 0.6


@pytest.mark.parametrize(("kw", "flt"), [
    ({"halted": True}, "halted"),
    ({"stale_flag": True}, "stale"),
    ({"ts": NOW - timedelta(minutes=10)}, "stale"),
    ({"volume": 10}, "min_volume"),
    ({"turnover": D(1000)}, "min_turnover"),
    ({"bid": D(10_000)}, "spread"),
    ({"bid": None}, "spread"),
    ({"price": D(500)}, "price_band"),
    ({"change_pct": D(29)}, "near_upper_limit"),
])
def test_filters_exclude_what_cannot_be_traded_safely(kw: dict[str, object], flt: str) -> None:
    e = evaluate(row(**kw), P, NOW)
    assert not e.passed and not e.signal and flt in e.rejected_by


@pytest.mark.parametrize(("kw", "why"), [
    ({"recent_high": D(10_600)}, "no_breakout"),
    ({"sma_short": D(10_100), "sma_long": D(10_200)}, "no_trend"),
    ({"sma_short": D(10_600), "sma_long": D(10_200), "recent_high": D(10_400)}, "below_short_ma"),
])
def test_no_signal_without_trend_breakout_and_price_above_the_short_average(kw: dict[str, object], why: str) -> None:
    e = evaluate(row(**kw), P, NOW)
    assert e.passed and not e.signal and why in e.rejected_by


def test_too_few_bars_is_no_signal() -> None:
    e = evaluate(row(n_bars=5), P, NOW)
    assert e.passed and not e.signal and e.rejected_by == ("not_enough_bars",)


def test_scan_counts_and_stores_signals_first() -> None:
    rows = [row(symbol="000001"), row(symbol="000002", halted=True), row(symbol="000003", recent_high=D(11_000)),
            row(symbol="000004", recent_high=D(10_000))]
    out = scan(rows, P, NOW)
    assert (out.universe, out.passed, out.signals) == (4, 3, 2)
    assert out.excluded == {"halted": 1}
    stored = to_store(out, 10)
    assert [e.symbol for e in stored][:2] == ["000004", "000001"]  # the stronger breakout first
    assert len(to_store(out, 0)) == 2  # signals are always kept
    assert spread_pct(D(100), D(90)) is None


# --- sizing ------------------------------------------------------------------------------------

def test_a_market_buy_is_sized_against_the_upper_limit_not_the_price() -> None:
    o = size_entry(D(1_000_000), D(10_500), D(10_500), D(13_000), order_type="MKT")
    assert o.qty == 76 and o.order_type == "MKT" and o.limit_price is None and o.reserve_price == D(13_000)
    assert o.qty * 13_000 <= 1_000_000 < (o.qty + 1) * 13_000


def test_a_limit_buy_is_marketable_at_the_ask_plus_ticks() -> None:
    o = size_entry(D(1_000_000), D(10_490), D(10_500), D(13_000), order_type="LMT", slippage_ticks=1)
    assert o.limit_price == D(10_510) and o.qty == 95 and o.order_type == "LMT"


def test_upper_limit_from_the_base_price_when_the_symbol_row_has_none() -> None:
    from stock_manager.shared.market_rules import Market
    assert upper_limit_of(D(10_500), None, D(10_000), Market.KOSPI) == D(13_000)
    assert upper_limit_of(D(10_500), D(12_990), None, Market.KOSPI) == D(12_990)


# --- exits -------------------------------------------------------------------------------------

def hold(**kw: object) -> Holding:
    base: dict[str, object] = dict(qty=100, avg_price=D(10_000), entry_ts=NOW - timedelta(minutes=10),
                                   high_water=D(10_000), exit_stage=0)
    base.update(kw)
    return Holding(**base)  # type: ignore[arg-type]


def q(price: int, sma_short: int | None = 10_000) -> Quote:
    return Quote(D(price), D(sma_short) if sma_short is not None else None, NOW)


def test_nothing_triggers_inside_the_bands() -> None:
    d = evaluate_exit(hold(), q(10_050), P, NOW)
    assert d.kind is ExitKind.NONE and d.reason is None and d.inputs["gain_pct"] == 0.5


def test_stop_loss() -> None:
    d = evaluate_exit(hold(), q(9_800), P, NOW)
    assert (d.kind, d.reason, d.qty) == (ExitKind.FULL, ExitReason.STOP_LOSS, 100)


def test_take_profit_sells_part_first_then_the_rest_at_the_second_target() -> None:
    d = evaluate_exit(hold(high_water=D(10_300)), q(10_300, 10_200), P, NOW)
    assert (d.kind, d.reason, d.qty) == (ExitKind.PARTIAL, ExitReason.TAKE_PROFIT, 50)
    d = evaluate_exit(hold(qty=50, exit_stage=1, high_water=D(10_300)), q(10_300, 10_200), P, NOW)
    assert d.kind is ExitKind.NONE
    d = evaluate_exit(hold(qty=50, exit_stage=1, high_water=D(10_500)), q(10_500, 10_400), P, NOW)
    assert (d.kind, d.reason) == (ExitKind.FULL, ExitReason.TAKE_PROFIT_2)
    assert partial_qty(1, D("0.5")) == 0
    d = evaluate_exit(hold(qty=1, high_water=D(10_300)), q(10_300, 10_200), P, NOW)
    assert (d.kind, d.reason, d.qty) == (ExitKind.FULL, ExitReason.TAKE_PROFIT, 1)


def test_trailing_stop_from_the_high_water_mark() -> None:
    d = evaluate_exit(hold(high_water=D(10_250), exit_stage=1), q(10_090, 10_000), P, NOW)
    assert (d.kind, d.reason) == (ExitKind.FULL, ExitReason.TRAILING_STOP)
    d = evaluate_exit(hold(high_water=D(10_100)), q(9_960, 9_900), P, NOW)  # never activated
    assert d.kind is ExitKind.NONE


def test_trend_break_below_the_short_average_after_the_minimum_hold() -> None:
    d = evaluate_exit(hold(), q(9_950, 10_100), P, NOW)
    assert (d.kind, d.reason) == (ExitKind.FULL, ExitReason.TREND_BREAK)
    d = evaluate_exit(hold(entry_ts=NOW - timedelta(seconds=30)), q(9_950, 10_100), P, NOW)
    assert d.kind is ExitKind.NONE
    d = evaluate_exit(hold(), q(9_950, None), P, NOW)
    assert d.kind is ExitKind.NONE


def test_time_exit() -> None:
    d = evaluate_exit(hold(entry_ts=NOW - timedelta(minutes=91)), q(10_050), P, NOW)
    assert (d.kind, d.reason) == (ExitKind.FULL, ExitReason.TIME_EXIT)


# --- risk --------------------------------------------------------------------------------------

LIM = RiskLimits(daily_loss_limit=D(300_000), capital_limit=D(10_000_000), max_positions=2,
                 max_symbol_exposure=D(3_000_000), stop_loss_pct=D(2))


def snap(**kw: object) -> RiskSnapshot:
    base: dict[str, object] = dict(trading_state="ACTIVE", realized_today=D(0), unrealized=D(0), open_positions=0,
                                   exposure=D(0), symbol_exposure={})
    base.update(kw)
    return RiskSnapshot(**base)  # type: ignore[arg-type]


ORDER = EntryProposal("005930", 76, D(13_000))


def test_an_entry_within_limits_passes() -> None:
    assert check_entry(LIM, snap(), ORDER) == []


@pytest.mark.parametrize(("kw", "rule"), [
    ({"trading_state": "HALTED"}, "trading_state"),
    ({"trading_state": "REDUCING"}, "trading_state"),
    ({"realized_today": D(-250_000), "unrealized": D(-40_000)}, "daily_loss_limit"),
    ({"exposure": D(9_500_000)}, "capital_limit"),
    ({"symbol_exposure": {"005930": D(2_500_000)}}, "symbol_exposure"),
    ({"open_positions": 2}, "max_positions"),
])
def test_entry_violations(kw: dict[str, object], rule: str) -> None:
    assert rule in {v.rule for v in check_entry(LIM, snap(**kw), ORDER)}


def test_an_order_larger_than_the_capital_limit_is_refused() -> None:
    big = EntryProposal("005930", 1_000, D(13_000))
    assert {"capital_limit", "symbol_exposure"} <= {v.rule for v in check_entry(LIM, snap(), big)}
    assert [v.rule for v in check_entry(LIM, snap(), EntryProposal("005930", 0, D(13_000)))] == ["size"]


def test_exits_may_sell_only_what_is_held_and_not_already_selling() -> None:
    assert check_exit(100, 0, 100) == []
    assert check_exit(100, 40, 60) == []
    assert check_exit(100, 40, 61)[0].rule == "exit_size"
    assert check_exit(100, 0, 0)


# --- positions from fills ----------------------------------------------------------------------

def fill(fid: int, side: str, qty: int, price: int, fee: int = 0, tax: int = 0, order: int | None = None,
         reason: str | None = None, **kw: object) -> FillRow:
    return FillRow(fill_id=fid, order_id=order or fid, side=side, qty=qty, price=D(price), fee=D(fee), tax=D(tax),
                   ts=NOW + timedelta(minutes=fid), reason=reason, **kw)  # type: ignore[arg-type]


def test_weighted_average_and_realized_pnl_with_fees_and_taxes() -> None:
    entry = uuid4()
    pos = fold("005930", [
        fill(1, "BUY", 10, 10_000, fee=15, intent_id=entry),
        fill(2, "BUY", 10, 10_200, fee=15, intent_id=entry),
        fill(3, "SELL", 5, 10_500, fee=8, tax=105, reason="TAKE_PROFIT"),
    ], {entry: D(10_000)})
    assert pos.qty == 15 and pos.avg_price == D(10_100)
    assert pos.trip is not None and pos.trip.realized == (D(10_500) - D(10_100)) * 5 - 15 - 15 - 8 - 105
    assert pos.trip.slippage(True) == D("1.0000")  # paid 1 % over the decision price on average


def test_a_round_trip_closes_at_zero_and_the_average_resets() -> None:
    fills = [fill(1, "BUY", 10, 10_000, fee=15), fill(2, "SELL", 4, 10_300, fee=6, tax=82, reason="TAKE_PROFIT"),
             fill(3, "SELL", 6, 9_900, fee=8, tax=118, reason="STOP_LOSS", order=3),
             fill(4, "BUY", 3, 20_000, fee=9)]
    pos = fold("005930", fills)
    assert pos.qty == 3 and pos.avg_price == D(20_000) and pos.fills_count == 4 and pos.last_fill_id == 4
    (trip,) = pos.closed_trips
    assert trip.pnl == 4 * 10_300 + 6 * 9_900 - 100_000 - (15 + 6 + 8) - (82 + 118)
    assert trip.pnl == trip.realized
    row = trip.as_row()
    assert row["exit_reason"] == "STOP_LOSS" and row["qty"] == 10 and row["sell_orders"] == 2 and not row["forced"]
    assert pos.trip is not None and pos.trip.first_fill_id == 4


def test_partially_filled_orders_are_counted_as_thin_liquidity() -> None:
    pos = fold("005930", [fill(1, "BUY", 10, 10_000, order_qty=10, order_filled_qty=10),
                          fill(2, "SELL", 6, 9_900, order=7, order_qty=10, order_filled_qty=6,
                               reason="FORCED_LIQUIDATION"),
                          fill(3, "SELL", 4, 9_850, order=8, reason="FORCED_LIQUIDATION")])
    row = pos.closed_trips[0].as_row()
    assert row["partial_orders"] == 1 and row["forced"]


def test_selling_more_than_held_cannot_be_replayed() -> None:
    with pytest.raises(PositionError):
        fold("005930", [fill(1, "BUY", 5, 10_000), fill(2, "SELL", 6, 10_000)])
    with pytest.raises(PositionError):
        fold("005930", [fill(1, "SELL", 1, 10_000)])


# --- daily summary -----------------------------------------------------------------------------

def trip_result(pnl: int, **kw: object) -> TripResult:
    base: dict[str, object] = dict(symbol="005930", pnl=D(pnl), fees=D(10), taxes=D(20), exit_reason="TAKE_PROFIT",
                                   forced=False, partial_orders=0, entry_slippage_pct=D("0.1"),
                                   exit_slippage_pct=D("0.1"), entry_context={"breakout_pct": 1.0, "trend_pct": 0.5})
    base.update(kw)
    return TripResult(**base)  # type: ignore[arg-type]


def test_summary_numbers() -> None:
    s = summarize([trip_result(5_000), trip_result(-2_000, exit_reason="STOP_LOSS"), trip_result(-7_000),
                   trip_result(1_000)])
    assert s.realized_pnl == D(-3_000) and s.trades_count == 4 and (s.wins, s.losses) == (2, 2)
    assert s.win_rate == D("0.5") and s.avg_pnl == D(-750) and s.max_loss == D(-7_000)
    assert s.fees == D(40) and s.taxes == D(80)
    assert s.notes["by_exit_reason"]["STOP_LOSS"] == {"n": 1, "wins": 0, "pnl": "-2000"}
    assert summarize([]).win_rate is None and summarize([trip_result(1)]).max_loss is None


def test_profit_factor_is_gross_wins_over_gross_losses() -> None:
    # wins 5,000 + 1,000 against losses 2,000 + 7,000: 6,000 / 9,000
    s = summarize([trip_result(5_000), trip_result(-2_000), trip_result(-7_000), trip_result(1_000)])
    assert s.profit_factor == D("0.6667")
    assert profit_factor([D(3_000), D(-1_000), D(0)]) == D(3)  # a flat trip counts on neither side
    # nothing lost: no ratio (not infinity, not a large number), whether or not anything was won
    assert profit_factor([D(1_000), D(2_000)]) is None and profit_factor([D(0)]) is None
    assert summarize([]).profit_factor is None


def test_max_drawdown_walks_the_realized_curve_in_closing_order() -> None:
    # equity 5,000 (peak) -> 3,000 -> -4,000 -> -3,000: the fall from 5,000 to -4,000
    s = summarize([trip_result(5_000), trip_result(-2_000), trip_result(-7_000), trip_result(1_000)])
    assert s.max_drawdown == D(9_000)
    # the same five trips in two orders: 2,000 3,000(peak) 2,500 700 300 falls 2,700 ...
    assert max_drawdown([D(2_000), D(1_000), D(-500), D(-1_800), D(-400)]) == D(2_700)
    # ... -500 1,500(peak) -300 700 300 falls 1,800 at most
    assert max_drawdown([D(-500), D(2_000), D(-1_800), D(1_000), D(-400)]) == D(1_800)
    # the day starts at a peak of 0: opening losers are drawdown; 1,500 -> -1,000 later is deeper
    assert max_drawdown([D(-1_000), D(-500), D(3_000), D(-2_500)]) == D(2_500)
    assert max_drawdown([D(1_000), D(2_000)]) == 0 and summarize([]).max_drawdown == 0


def test_summary_notes_for_tomorrow() -> None:
    s = summarize([
        trip_result(5_000, entry_context={"breakout_pct": 2.0}),
        trip_result(-3_000, exit_reason="FORCED_LIQUIDATION", forced=True, partial_orders=1, symbol="000660",
                    exit_slippage_pct=D("0.8"), entry_context={"breakout_pct": 0.2}),
    ], unfilled=[{"symbol": "000660", "remaining": 3}])
    n = s.notes
    assert n["signal_inputs"]["winners"]["breakout_pct"] == 2.0 and n["signal_inputs"]["losers"]["breakout_pct"] == 0.2
    assert n["thin_liquidity"]["symbols"] == ["000660"] and n["thin_liquidity"]["partial_fill_trades"] == 1
    assert n["forced_exits"] == {"trades": 1, "losses": 1, "pnl": "-3000", "loss_pnl": "-3000"}
    assert n["unfilled"] == [{"symbol": "000660", "remaining": 3}]
    assert any("forced liquidation" in x for x in n["suggestions"])


# --- liquidation -------------------------------------------------------------------------------

def test_the_liquidation_window_starts_lead_minutes_before_the_close() -> None:
    assert str(liquidation_start(15)) == "15:15:00"
    assert not in_liquidation_window(NOW.replace(hour=15, minute=14), 15)
    assert in_liquidation_window(NOW.replace(hour=15, minute=15), 15)
    assert in_liquidation_window(NOW.replace(hour=15, minute=25), 15)  # the closing auction too
    assert not in_liquidation_window(NOW.replace(hour=15, minute=30), 15)
    assert after_close(NOW.replace(hour=15, minute=30)) and not after_close(NOW)
    assert flatten_requested("REDUCING", "FLATTEN by operator") and not flatten_requested("REDUCING", "loss")
    assert not flatten_requested("HALTED", "FLATTEN")


def test_least_liquid_first_and_the_remainder() -> None:
    views = [LiquidityView("A", 1, D(9e9), D("0.1")), LiquidityView("B", 1, D(1e8), D("0.5")),
             LiquidityView("C", 1, None, None)]
    assert [v.symbol for v in least_liquid_first(views)] == ["C", "B", "A"]
    assert remainder(100, 60) == 40 and remainder(100, 120) == 0 and remainder(100, -1) == 100


# --- what became of an intent ------------------------------------------------------------------

def outcome_row(intent: str, order: str | None, filled: int = 0) -> dict[str, object]:
    return {"intent_status": intent, "order_status": order, "filled_qty": filled, "order_reason": None,
            "intent_reason": "x", "order_id": 1 if order else None, "order_age_s": 1.0, "qty": 10}


@pytest.mark.parametrize(("intent", "order", "filled", "fate"), [
    ("NEW", None, 0, Fate.PENDING),
    ("PROCESSING", "PENDING_SUBMIT", 0, Fate.PENDING),
    ("REJECTED", None, 0, Fate.FAILED),
    ("FAILED", None, 0, Fate.FAILED),
    ("REJECTED", "REJECTED", 0, Fate.FAILED),
    ("SUBMITTED", "CANCELLED", 0, Fate.FAILED),
    ("SUBMITTED", "PARTIAL", 4, Fate.WORKING),
    ("SUBMITTED", "FILLED", 10, Fate.DONE),
    ("SUBMITTED", "CANCELLED", 4, Fate.DONE),
])
def test_judge(intent: str, order: str | None, filled: int, fate: Fate) -> None:
    assert judge(outcome_row(intent, order, filled)).fate is fate
