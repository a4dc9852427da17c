from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from stock_manager.services.execution.rules import (
    ORD_DVSN,
    BrokerOrder,
    Funds,
    Intent,
    PendingOrder,
    SymbolInfo,
    buy_reservation,
    fill_costs,
    match_in_doubt,
    order_status,
    unaffordable,
    validate,
)
from stock_manager.shared.clock import KST
from stock_manager.shared.market_rules import Market, parse_fee_schedule
from stock_manager.shared.trade_states import OrderStatus

RATE = Decimal("0.00015")
SAMSUNG = SymbolInfo("005930", Market.KOSPI, False, 92_300, 49_700, Decimal(71_000))
NO_FUNDS = Funds(None, {})


def intent(**kw: object) -> Intent:
    base: dict[str, object] = dict(intent_id="i", action_key="k", symbol="005930", side="BUY", intent_type="ENTRY",
                                   qty=10, order_type="LMT", limit_price=Decimal(71_000))
    base.update(kw)
    return Intent(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "info", "state", "funds", "reason"),
    [
        ({}, None, "ACTIVE", NO_FUNDS, "unknown symbol"),
        ({"qty": 0}, SAMSUNG, "ACTIVE", NO_FUNDS, "quantity must be positive"),
        ({"limit_price": Decimal(71_050)}, SAMSUNG, "ACTIVE", NO_FUNDS, "off the tick grid"),
        ({"limit_price": Decimal("71000.5")}, SAMSUNG, "ACTIVE", NO_FUNDS, "off the tick grid"),
        ({"limit_price": Decimal(92_400)}, SAMSUNG, "ACTIVE", NO_FUNDS, "above the daily upper limit"),
        ({"limit_price": Decimal(49_600)}, SAMSUNG, "ACTIVE", NO_FUNDS, "below the daily lower limit"),
        ({}, SAMSUNG, "HALTED", NO_FUNDS, "entries are blocked"),
        ({}, SAMSUNG, "REDUCING", NO_FUNDS, "entries are blocked"),
        ({}, SymbolInfo("005930", Market.KOSPI, True, 92_300, 49_700, None), "ACTIVE", NO_FUNDS, "is halted"),
        ({"order_type": "MKT", "limit_price": None}, SAMSUNG, "ACTIVE", Funds(Decimal(800_000), {}),
         "not enough cash"),
        ({"side": "SELL", "intent_type": "EXIT_FULL"}, SAMSUNG, "ACTIVE", Funds(None, {"005930": 5}),
         "not enough shares"),
        ({"side": "SELL"}, SAMSUNG, "ACTIVE", NO_FUNDS, "ENTRY must be a BUY"),
    ],
)
def test_validation_reasons(kw: dict[str, object], info: SymbolInfo | None, state: str, funds: Funds,
                            reason: str) -> None:
    the = intent(**kw)
    got = validate(the, info, state) or (unaffordable(the, info, funds, RATE) if info else None)
    assert got is not None and reason in got


def test_exits_pass_while_halted_and_valid_entries_pass() -> None:
    exit_ = intent(side="SELL", intent_type="EXIT_FULL", order_type="MKT", limit_price=None)
    assert validate(exit_, SAMSUNG, "HALTED") is None
    assert unaffordable(exit_, SAMSUNG, Funds(None, {"005930": 10}), RATE) is None
    assert validate(intent(), SAMSUNG, "ACTIVE") is None
    assert unaffordable(intent(), SAMSUNG, Funds(Decimal(10_000_000), {}), RATE) is None
    # a symbol the view has no figure for is the broker's to judge
    assert unaffordable(exit_, SAMSUNG, Funds(None, {"000660": 0}), RATE) is None


def test_market_buys_reserve_at_the_upper_limit() -> None:
    need = buy_reservation(intent(order_type="MKT", limit_price=None), SAMSUNG, RATE)
    assert need == Decimal(923_000) + Decimal(138)


@pytest.mark.parametrize(
    ("qty", "filled", "cancelled", "rejected", "status"),
    [(10, 0, 0, False, "SUBMITTED"), (10, 4, 0, False, "PARTIAL"), (10, 10, 0, False, "FILLED"),
     (10, 4, 6, False, "CANCELLED"), (10, 0, 10, False, "CANCELLED"), (10, 0, 0, True, "REJECTED")],
)
def test_order_status_from_quantities(qty: int, filled: int, cancelled: int, rejected: bool, status: str) -> None:
    assert order_status(qty, filled, cancelled, rejected) is OrderStatus(status)


def test_costs() -> None:
    day = date(2026, 11, 23)
    fee, tax = fill_costs("SELL", 10, Decimal(70_000), Market.KOSPI, day, RATE)
    assert (fee, tax) == (Decimal(105), Decimal(1400))
    assert fill_costs("BUY", 10, Decimal(70_000), Market.KOSPI, day, RATE)[1] == 0


def test_costs_follow_a_tiered_schedule_and_the_settlement_date() -> None:
    branch = parse_fee_schedule('[{"below": 2000000, "rate": "0.004971"}, {"rate": "0.001971", "fixed": 2000}]')
    day = date(2026, 11, 23)
    assert fill_costs("BUY", 10, Decimal(70_000), Market.KOSPI, day, branch) == (Decimal(3479), Decimal(0))
    assert fill_costs("SELL", 100, Decimal(70_000), Market.KOSPI, day, branch) == (Decimal(13797 + 2000),
                                                                                     Decimal(14000))
    # sold on Tuesday 2025-12-30, settled in 2026: 2026's 0.20 %, not 2025's 0.15 %
    assert fill_costs("SELL", 10, Decimal(70_000), Market.KOSPI, date(2025, 12, 30), RATE)[1] == Decimal(1400)
    assert fill_costs("SELL", 10, Decimal(70_000), Market.KOSPI, date(2025, 12, 26), RATE)[1] == Decimal(1050)


T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def b(odno: str, at_s: float | None, qty: int = 10, orgn: str | None = None) -> BrokerOrder:
    return BrokerOrder(odno, "005930", "BUY", qty, "01", 0, T0 + timedelta(seconds=at_s) if at_s is not None else None,
                       orgn)


def p(order_id: int, at_s: float, qty: int = 10) -> PendingOrder:
    return PendingOrder(order_id, "005930", "BUY", qty, "01", 0, T0 + timedelta(seconds=at_s))


def test_in_doubt_matching() -> None:
    w = {"before": timedelta(seconds=5), "after": timedelta(seconds=60), "margin": timedelta(seconds=300)}
    # found, absent, and a cancel row (carries orgn_odno) never counts as the order itself
    got = match_in_doubt([p(1, 0), p(2, 0, qty=7)], [b("0000000009", 1), b("0000000010", 1, qty=7, orgn="1")], **w)
    assert got[1] is not None and got[1].odno == "0000000009"
    assert got[2] is None
    # identical submissions pair oldest with oldest
    got = match_in_doubt([p(2, 10), p(1, 0)], [b("B", 11), b("A", 1)], **w)
    assert got[1] is not None and got[1].odno == "A" and got[2] is not None and got[2].odno == "B"
    # a matching order outside the window is still taken: never call absent what the broker may hold
    got = match_in_doubt([p(1, 0)], [b("C", 900)], **w)
    assert got[1] is not None and got[1].odno == "C"
    # an identical order the broker took before we attempted ours (less the clocks' margin) is not
    # ours: a manual order placed by hand ten minutes earlier is never adopted, however alike
    got = match_in_doubt([p(1, 600)], [b("HTS", 0)], **w)
    assert got[1] is None
    got = match_in_doubt([p(1, 600)], [b("HTS", 0), b("D", 590)], **w)
    assert got[1] is not None and got[1].odno == "D"
    got = match_in_doubt([p(1, 600)], [b("E", 400)], **w)  # within the margin: it may be ours
    assert got[1] is not None and got[1].odno == "E"


# --- the order types of the close --------------------------------------------------------------------

def _at(hh: int, mm: int) -> datetime:
    return datetime(2026, 3, 10, hh, mm, tzinfo=KST)  # a Tuesday


def _sell(order_type: str, price: int | None) -> Intent:
    return intent(side="SELL", intent_type="EXIT_FULL", order_type=order_type,
                  limit_price=Decimal(price) if price is not None else None)


def test_the_order_types_map_to_their_ord_dvsn() -> None:
    assert ORD_DVSN == {"MKT": "01", "LMT": "00", "CLMT": "02", "CLOSE": "06", "AHS": "07"}


@pytest.mark.parametrize(
    ("order_type", "price", "hh", "mm", "reason"),
    [
        ("CLMT", 70_000, 15, 10, None),
        ("CLMT", 70_000, 15, 19, None),
        ("CLMT", 70_000, 15, 20, "only for continuous trading, 09:00-15:20 (it cannot join the closing call); "
                                 "the market is CLOSING_AUCTION"),
        ("CLMT", 70_000, 15, 45, "only for continuous trading"),
        ("CLMT", None, 15, 10, "needs a limit price"),
        ("CLMT", 70_050, 15, 10, "off the tick grid"),
        ("CLMT", 49_600, 15, 10, "below the daily lower limit"),
        ("CLOSE", None, 15, 40, None),
        ("CLOSE", None, 15, 59, None),
        ("CLOSE", None, 15, 35, "only for the post-close session at the closing price, 15:40-16:00; the market is"),
        ("CLOSE", None, 16, 0, "only for the post-close session"),
        ("CLOSE", None, 15, 10, "only for the post-close session"),
        ("CLOSE", 70_000, 15, 45, "carries no price"),
        ("AHS", 63_900, 16, 0, None),
        ("AHS", 63_900, 17, 59, None),
        ("AHS", 63_900, 15, 50, "only for the after-hours single-price session, 16:00-18:00"),
        ("AHS", 63_900, 18, 0, "the market is CLOSED"),
        ("AHS", None, 16, 30, "needs a limit price"),
        ("AHS", 63_950, 16, 30, "off the tick grid"),
    ],
)
def test_session_bound_types_are_refused_outside_their_session(order_type: str, price: int | None, hh: int,
                                                               mm: int, reason: str | None) -> None:
    got = validate(_sell(order_type, price), SAMSUNG, "REDUCING", _at(hh, mm))
    if reason is None:
        assert got is None
    else:
        assert got is not None and reason in got


def test_without_the_time_only_the_price_rules_apply() -> None:
    assert validate(_sell("CLOSE", None), SAMSUNG, "ACTIVE") is None
    assert validate(_sell("AHS", 63_900), SAMSUNG, "ACTIVE") is None
    assert validate(_sell("MKT", None), SAMSUNG, "ACTIVE", _at(15, 45)) is None  # MKT/LMT: the broker's to judge
