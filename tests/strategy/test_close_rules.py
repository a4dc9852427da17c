"""The close as pure rules, no database: who starts when, which stage and order type apply at each
moment, no cancel from the cutoff to the uncross, the retry cap, prices, and the cost summary."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal as D

import pytest

from stock_manager.services.strategy.rules.liquidation import (
    LiquidityView,
    Stage,
    Step,
    Verdict,
    after_hours_price,
    cancel_cutoff,
    closing_limit,
    day_over,
    liquidation_costs,
    liquidation_note,
    may_cancel,
    start_times,
    step_at,
    uncross_settled,
    verdict,
)
from stock_manager.shared.clock import KST
from stock_manager.shared.market_rules import Market
from stock_manager.shared.trade_states import OrderType

DAY = datetime(2026, 3, 10, tzinfo=KST)  # a Tuesday
THIN = LiquidityView("000660", 10, D(600_000_000), D("0.2"))
MID = LiquidityView("035720", 10, D(5_000_000_000), D("0.1"))
DEEP = LiquidityView("005930", 10, D(90_000_000_000), D("0.1"))


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return DAY.replace(hour=hh, minute=mm, second=ss)


def step(now: datetime, start: time = time(15, 15), *, flatten: bool = False, after_hours: bool = True) -> Step | None:
    return step_at(now, start, flatten=flatten, after_hours=after_hours, lead_min=15, cancel_guard_s=30)


def test_the_least_liquid_start_first_spread_between_the_two_leads() -> None:
    starts = start_times([DEEP, THIN, MID], 15, 11)
    assert starts == {"000660": time(15, 15), "035720": time(15, 17), "005930": time(15, 19)}
    assert start_times([DEEP], 15, 10) == {"005930": time(15, 15)}  # alone, it is the thinnest too
    assert start_times([THIN, DEEP], 15, 10) == {"000660": time(15, 15), "005930": time(15, 20)}
    unknown = LiquidityView("111111", 1, None, None)  # no turnover known: treated as the thinnest
    assert start_times([DEEP, unknown], 15, 11)["111111"] == time(15, 15)


@pytest.mark.parametrize(
    ("hh", "mm", "ss", "stage", "order_type", "send", "resend", "cancel"),
    [
        (15, 14, 59, None, None, False, False, False),  # before its start
        (15, 15, 0, Stage.CLOSING, OrderType.CLMT, True, True, True),
        (15, 19, 29, Stage.CLOSING, OrderType.CLMT, True, True, True),
        (15, 19, 30, Stage.CLOSING, OrderType.CLMT, True, False, False),  # the cutoff: 30 s before 15:20
        (15, 19, 59, Stage.CLOSING, OrderType.CLMT, True, False, False),  # a first sell, still before 15:20
        (15, 20, 0, Stage.CLOSING, OrderType.CLMT, False, False, False),  # the auction: hands off
        (15, 29, 59, Stage.CLOSING, OrderType.CLMT, False, False, False),
        (15, 30, 0, None, None, False, False, False),  # the uncross, up to 30 s after 15:30
        (15, 39, 59, None, None, False, False, False),
        (15, 40, 0, Stage.POST_CLOSE, OrderType.CLOSE, True, True, False),
        (15, 59, 59, Stage.POST_CLOSE, OrderType.CLOSE, True, True, False),
        (16, 0, 0, Stage.AFTER_HOURS, OrderType.AHS, True, True, False),
        (17, 59, 59, Stage.AFTER_HOURS, OrderType.AHS, True, True, False),
        (18, 0, 0, None, None, False, False, False),
    ],
)
def test_the_stage_and_order_type_at_each_moment(hh: int, mm: int, ss: int, stage: Stage | None,
                                                 order_type: OrderType | None, send: bool, resend: bool,
                                                 cancel: bool) -> None:
    s = step(at(hh, mm, ss))
    if stage is None:
        assert s is None
        return
    assert s is not None
    assert (s.stage, s.order_type, s.may_send, s.may_resend, s.may_cancel) == (stage, order_type, send, resend,
                                                                               cancel)


def test_stages_count_their_attempts_from_their_own_start() -> None:
    closing, post, after = step(at(15, 16)), step(at(15, 45)), step(at(16, 30))
    assert closing is not None and closing.since == at(15, 15)  # the close window, for every symbol
    assert post is not None and post.since == at(15, 40)
    assert after is not None and after.since == at(16, 0)


def test_a_later_start_waits_and_a_flatten_does_not() -> None:
    assert step(at(15, 16), time(15, 19)) is None
    s = step(at(15, 16), time(15, 19), flatten=True)
    assert s is not None and s.stage is Stage.CLOSING and s.order_type is OrderType.CLMT
    s = step(at(10, 0), flatten=True)  # before the close window: market orders, re-sent until sold
    assert s is not None and (s.stage, s.order_type, s.may_cancel) == (Stage.REGULAR, OrderType.MKT, True)
    assert step(at(10, 0)) is None
    late = step(at(15, 25), time(15, 19), flatten=True)  # in the auction even a flatten waits for 15:40
    assert late is not None and not late.may_send


def test_paper_has_no_order_after_the_close() -> None:
    for t in (at(15, 45), at(16, 30)):
        s = step(t, after_hours=False)
        assert s is not None and s.order_type is None
        assert verdict(s, 10, 0, 3) is Verdict.NONE


def test_weekends_are_closed() -> None:
    sat = datetime(2026, 3, 14, 15, 45, tzinfo=KST)
    assert step(sat) is None and step(sat.replace(hour=15, minute=16)) is None
    assert not day_over(sat.replace(hour=19), after_hours=True, flat=False)


def test_no_cancel_from_the_cutoff_or_once_the_retries_are_spent() -> None:
    assert cancel_cutoff(30) == time(15, 19, 30)
    live = step(at(15, 18))
    assert live is not None
    assert may_cancel(live, 1, 3) and may_cancel(live, 3, 3)
    assert not may_cancel(live, 4, 3)  # its replacement could not be sent
    for t in (at(15, 19, 30), at(15, 20), at(15, 29), at(15, 45), at(16, 30)):
        s = step(t)
        assert s is not None and not may_cancel(s, 1, 3), t


def test_three_retries_per_stage_then_capped() -> None:
    s = step(at(15, 45))
    assert s is not None
    assert verdict(s, 10, 0, 3) is Verdict.SEND  # the first
    assert [verdict(s, 10, n, 3) for n in (1, 2, 3)] == [Verdict.SEND] * 3  # three retries
    assert verdict(s, 10, 4, 3) is Verdict.CAPPED
    assert verdict(s, 0, 4, 3) is Verdict.NONE  # nothing left: nothing to report
    auction = step(at(15, 22))
    assert auction is not None
    assert verdict(auction, 10, 0, 3) is Verdict.DEFER and verdict(auction, 10, 1, 3) is Verdict.DEFER


def test_the_day_is_over_when_flat_after_the_uncross_or_when_no_session_is_left() -> None:
    assert uncross_settled() == time(15, 31)
    assert not day_over(at(15, 30, 59), after_hours=True, flat=True)
    assert day_over(at(15, 31), after_hours=True, flat=True)
    assert not day_over(at(15, 31), after_hours=True, flat=False)  # 06 and 07 are still to come
    assert not day_over(at(17, 59), after_hours=True, flat=False)
    assert day_over(at(18, 0), after_hours=True, flat=False)
    assert day_over(at(15, 31), after_hours=False, flat=False)  # paper: the uncross was the last


def test_prices_of_the_conditional_limit_and_the_after_hours_sell() -> None:
    assert closing_limit(D(10_390), D(10_400), 7_280, Market.KOSPI, 2) == 10_370
    assert closing_limit(None, D(10_400), 7_280, Market.KOSPI, 2) == 10_380
    assert closing_limit(D(7_290), None, 7_280, Market.KOSPI, 2) == 7_280  # never below the lower limit
    assert closing_limit(D(20_000), None, None, Market.KOSPI, 1) == 19_990  # the tick below 20,000 is 10
    assert closing_limit(None, None, 7_280, Market.KOSPI, 2) == 7_280
    assert closing_limit(None, None, None, Market.KOSPI, 2) is None
    assert after_hours_price(D(10_280), 10_400, Market.KOSPI) == 9_260  # 9,252 up onto the tick
    assert after_hours_price(D(10_300), 10_400, Market.KOSPI) == 9_270
    assert after_hours_price(D(52_000), 52_000, Market.KOSPI) == 46_800
    # 4,995: the lower daily limit (7,140 - 2,140) is higher
    assert after_hours_price(D(5_550), 7_140, Market.KOSPI) == 5_000
    assert after_hours_price(D(5_540), 5_500, Market.KOSPI) == 4_990  # 4,986 up onto the 5-won tick
    assert after_hours_price(D(10_280), None, Market.KOSPI) == 9_260  # no base: limits around the close


def test_the_summary_records_what_thin_books_cost() -> None:
    rows = [
        {"symbol": "000660", "trip": "7", "order_type": "CLMT", "ref_price": D(10_390), "qty": 76,
         "filled_qty": 30, "filled_amount": D(309_000)},
        {"symbol": "000660", "trip": "7", "order_type": "CLOSE", "ref_price": D(10_280), "qty": 46,
         "filled_qty": 10, "filled_amount": D(102_800)},
        {"symbol": "000660", "trip": "7", "order_type": "AHS", "ref_price": D(10_280), "qty": 36,
         "filled_qty": 36, "filled_amount": D(333_360)},
        {"symbol": "005930", "trip": "3", "order_type": "CLMT", "ref_price": D(10_490), "qty": 76,
         "filled_qty": 76, "filled_amount": D(797_240)},
    ]
    c = liquidation_costs(rows)
    thin, deep = c["trips"]
    assert thin["reference_price"] == D(10_390) and thin["sold_qty"] == 76
    assert thin["cost_won"] == D(10_390 * 76 - 745_160) and thin["thin"]
    assert thin["by_type"]["AHS"] == {"qty": 36, "avg_price": D("9260.00")}
    assert deep["cost_won"] == D(0) and deep["cost_pct"] == D("0.00") and not deep["thin"]
    assert c["thin_symbols"] == ["000660"] and c["cost_won"] == thin["cost_won"]
    note = liquidation_note(c)
    assert note is not None and note.startswith("unfavourable liquidation fills from thin liquidity: 000660")
    assert "via AHS/CLMT/CLOSE" in note
    assert liquidation_note(liquidation_costs(rows[3:])) is None
