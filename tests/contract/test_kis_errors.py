"""Contract: how the adapter handles what the broker refuses and what goes wrong on the way.

Business rejections are final and never resent; gateway rate limits are retried and then raised as
``RateLimited``; a 5xx on a query is retried; on an order, anything that leaves the outcome open
(5xx, timeout, lost response) is ``OutcomeUnknown`` after exactly one send, and ``/sim/orders``
says what really happened at the broker.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from stock_manager.shared.clock import kst
from stock_manager.shared.kis.errors import BusinessRejected, OutcomeUnknown, RateLimited, ServerError, TransportError
from stock_manager.shared.kis.models import Quote, Side
from stock_manager.shared.kis.pg_ports import UnlimitedRateLimiter
from stock_manager.shared.kis.rest import RetryPolicy
from stock_manager.shared.market_rules import ticks_away
from tests.contract.support import ORDER_CASH, PRICE, RVSECNCL, Harness

SYMBOL = "005930"


async def test_an_off_tick_price_is_rejected_and_nothing_is_placed(h: Harness) -> None:
    a = h.adapter()
    quote = await a.rest.inquire_price(SYMBOL)
    assert quote.tick == 100
    off_tick = ticks_away(quote.price, -10) + 50
    with pytest.raises(BusinessRejected) as refused:
        await a.rest.order_cash(Side.BUY, SYMBOL, 1, "00", off_tick)
    assert "호가단위" in (refused.value.msg1 or "")
    assert a.wire.count(ORDER_CASH) == 1
    assert h.broker_orders() == []


async def test_orders_outside_session_hours_are_rejected(h: Harness) -> None:
    h.set_clock("2026-11-23T16:00:00+09:00")
    a = h.adapter()
    quote = await a.rest.inquire_price(SYMBOL)  # quotes still answer after the close
    for ord_dvsn, price in (("01", 0), ("00", quote.price)):
        with pytest.raises(BusinessRejected) as refused:
            await a.rest.order_cash(Side.BUY, SYMBOL, 1, ord_dvsn, price)
        assert "장종료" in (refused.value.msg1 or "")
    assert a.wire.count(ORDER_CASH) == 2
    assert h.broker_orders() == []


async def test_egw00201_without_a_client_limiter_ends_as_rate_limited_after_retries(h: Harness) -> None:
    a = h.adapter(limiter=UnlimitedRateLimiter(), retry=RetryPolicy(rate_limited=(0.05, 0.05, 0.05), jitter=0))
    await a.rest.access_token()
    results = await asyncio.gather(*(a.rest.inquire_price(SYMBOL) for _ in range(60)), return_exceptions=True)
    ok = [r for r in results if isinstance(r, Quote)]
    limited = [r for r in results if isinstance(r, RateLimited)]
    assert len(ok) + len(limited) == 60, [r for r in results if not isinstance(r, Quote | RateLimited)]
    assert len(ok) >= 20  # the broker lets its 20 per second through
    assert limited, "60 requests at once never hit the broker's 20/s"
    assert {(e.http_status, e.msg_cd) for e in limited} == {(500, "EGW00201")}
    assert a.wire.count(PRICE, 200) == len(ok)
    assert a.wire.count(PRICE, 500) >= 4 * len(limited)  # each gave up only after three retries
    assert a.wire.count(PRICE) == a.wire.count(PRICE, 200) + a.wire.count(PRICE, 500)


async def test_a_burst_over_the_limit_is_retried_and_every_call_succeeds(h: Harness) -> None:
    a = h.adapter(limiter=UnlimitedRateLimiter())  # the default back-off: 1, 2, 4 s
    await a.rest.access_token()
    quotes = await asyncio.gather(*(a.rest.inquire_price(SYMBOL) for _ in range(25)))
    assert len(quotes) == 25
    assert a.wire.count(PRICE, 500) >= 5
    assert a.wire.count(PRICE, 200) == 25


async def test_orders_refused_for_the_rate_limit_are_resent_and_each_placed_once(h: Harness) -> None:
    a = h.adapter(limiter=UnlimitedRateLimiter())
    book = await a.rest.inquire_asking_price(SYMBOL)
    price = ticks_away(book.bids[0].price, -10)
    acks = await asyncio.gather(*(a.rest.order_cash(Side.BUY, SYMBOL, 1, "00", price) for _ in range(25)))
    assert a.wire.count(ORDER_CASH, 500) >= 5  # EGW00201 proves the order was not taken: safe to resend
    assert len({x.odno for x in acks}) == 25
    assert sorted(o["odno"] for o in h.broker_orders()) == sorted(x.odno_raw for x in acks)


async def test_a_query_that_times_out_is_retried_then_raised(h: Harness) -> None:
    a = h.adapter(read_timeout=0.3, retry=RetryPolicy(transport=(0.05, 0.05), jitter=0))
    await a.rest.access_token()
    h.faults(timeout_rate=1.0, fault_paths=["inquire-price"])
    with pytest.raises(TransportError) as failed:
        await a.rest.inquire_price(SYMBOL)
    assert failed.value.sent
    assert [s.status for s in a.wire.to(PRICE)] == [None, None, None]


async def test_http_500_on_a_query_is_retried_until_it_answers(h: Harness) -> None:
    a = h.adapter(retry=RetryPolicy(server_error=(0.3, 0.3, 0.3), jitter=0))
    await a.rest.access_token()
    h.faults(http_500_rate=1.0, fault_paths=["inquire-price"])
    call = asyncio.create_task(a.rest.inquire_price(SYMBOL))
    deadline = time.monotonic() + 5
    while a.wire.count(PRICE, 500) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    h.faults(http_500_rate=0.0)
    quote = await call
    assert quote.symbol == SYMBOL
    assert [s.status for s in a.wire.to(PRICE)] == [500, 500, 200]

    # a fault that does not clear: three retries, then the error
    h.faults(http_500_rate=1.0)
    with pytest.raises(ServerError) as failed:
        await a.rest.inquire_price(SYMBOL)
    assert failed.value.http_status == 500
    assert [s.status for s in a.wire.to(PRICE)][3:] == [500] * 4


async def test_http_500_on_an_order_is_outcome_unknown_and_never_resent(h: Harness) -> None:
    a = h.adapter()
    await a.rest.access_token()
    h.faults(http_500_rate=1.0, fault_paths=["order-cash"])
    with pytest.raises(OutcomeUnknown) as unknown:
        await a.rest.order_cash(Side.BUY, SYMBOL, 1, "01")
    assert unknown.value.http_status == 500
    assert (unknown.value.request["symbol"], unknown.value.request["qty"]) == (SYMBOL, "1")
    assert a.wire.count(ORDER_CASH) == 1
    assert h.broker_orders() == []  # this fault answers before the order system sees anything


async def test_timeout_on_an_order_is_outcome_unknown_and_no_order_exists(h: Harness) -> None:
    a = h.adapter(order_read_timeout=1.0)
    await a.rest.access_token()
    h.faults(timeout_rate=1.0, fault_paths=["order-cash"])
    with pytest.raises(OutcomeUnknown) as unknown:
        await a.rest.order_cash(Side.BUY, SYMBOL, 3, "01")
    assert unknown.value.cause == "ReadTimeout"
    assert [s.status for s in a.wire.to(ORDER_CASH)] == [None]  # sent once, no answer, not resent
    assert h.broker_orders() == []


async def test_lost_response_on_an_order_is_outcome_unknown_and_exactly_one_order_exists(h: Harness) -> None:
    a = h.adapter(order_read_timeout=1.0)
    await a.rest.access_token()
    h.faults(lost_response_rate=1.0, fault_paths=["order-cash"])
    with pytest.raises(OutcomeUnknown) as unknown:
        await a.rest.order_cash(Side.BUY, SYMBOL, 3, "01")
    assert unknown.value.cause == "ReadTimeout"
    assert [s.status for s in a.wire.to(ORDER_CASH)] == [None]
    [order] = h.broker_orders()
    assert (order["symbol"], order["side"], order["qty"], order["status"]) == (SYMBOL, "BUY", 3, "FILLED")

    # reconciliation can find it through the adapter's own queries
    day = kst(h.clock().now()).date()
    rows = (await a.rest.inquire_daily_ccld(day, day)).rows
    assert [(r.odno, r.tot_ccld_qty) for r in rows] == [(str(int(order["odno"])), 3)]


async def test_lost_response_on_a_cancel_is_outcome_unknown_and_the_cancel_happened(h: Harness) -> None:
    a = h.adapter(order_read_timeout=1.0)
    book = await a.rest.inquire_asking_price(SYMBOL)
    placed = await a.rest.order_cash(Side.BUY, SYMBOL, 4, "00", ticks_away(book.bids[0].price, -10))
    h.faults(lost_response_rate=1.0, fault_paths=["order-rvsecncl"])
    with pytest.raises(OutcomeUnknown) as unknown:
        await a.rest.cancel(placed.odno_raw, placed.org_no)
    assert unknown.value.request["op"] == "cancel"
    assert a.wire.count(RVSECNCL) == 1
    broker = {o["odno"]: o for o in h.broker_orders()}
    assert broker[placed.odno_raw]["status"] == "CANCELLED"
    [cancel] = [o for o in broker.values() if o["kind"] == "CANCEL"]
    assert cancel["orgn_odno"] == placed.odno_raw
