"""Contract: the KIS REST adapter against the running simulator, endpoint by endpoint.

Real HTTP to the simulator as a separate process; the token store and the request budget are the
PostgreSQL ones (``PgTokenStore``, ``PgRateLimiter``) on the test's own database.  What the adapter
returns is checked against the simulator's ground truth (``/sim/orders``, ``/sim/fills``) and
against what went over the wire (``Wire``).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from datetime import datetime, time, timedelta

import httpx
import pytest

from stock_manager.shared.clock import KST, kst
from stock_manager.shared.kis.errors import BusinessRejected, ServiceNotFound, TokenIssueTooOften
from stock_manager.shared.kis.models import CcldDvsn, OrderAck, Side
from stock_manager.shared.market_rules import Market, price_limits, tick_size, ticks_away
from tests.contract.support import (
    APPROVAL,
    BALANCE,
    DAILY_CCLD,
    HASHKEY,
    ORDER_CASH,
    PRICE,
    RVSECNCL,
    TOKEN,
    Harness,
    secret,
)

SYMBOL = "005930"  # 삼성전자: tier 0, a deep book, so market orders fill at once
TRADE_DAY = datetime(2026, 11, 23, tzinfo=KST).date()


def raw_token(h: Harness) -> httpx.Response:
    """Ask the simulator for a token directly, as another machine with the same key would."""
    creds = h.creds
    return h.sim.http.post(
        TOKEN,
        json={
            "grant_type": "client_credentials",
            "appkey": secret(creds.app_key),
            "appsecret": secret(creds.app_secret),
        },
    )


def assert_ack(ack: OrderAck, org_no: str, msg_cd: str) -> None:
    assert re.fullmatch(r"\d{10}", ack.odno_raw), ack.odno_raw
    assert ack.odno == str(int(ack.odno_raw))
    assert ack.org_no == org_no
    assert ack.msg_cd == msg_cd
    assert ack.ord_time is not None and ack.ord_time.hour == 10


# --- OAuth: token, approval key, hashkey ----------------------------------------------------------


async def test_token_is_issued_once_then_shared_through_the_database(h: Harness) -> None:
    a = h.adapter()
    token = await a.rest.access_token()
    assert secret(token.value).count(".") == 2  # a JWT, as KIS issues
    # KIS states expiry as a KST second; 24 hours on the gateway's wall clock, not the market's
    expected = h.wall().now() + timedelta(hours=24)
    assert abs((token.expires_at - expected).total_seconds()) < 5
    await a.rest.inquire_price(SYMBOL)
    await a.rest.inquire_price(SYMBOL)
    assert a.wire.count(TOKEN) == 1
    assert {s.status for s in a.wire.to(PRICE)} == {200}

    # another process: its own client, the same database -> the same token, no request for one
    b = h.adapter()
    assert secret((await b.rest.access_token()).value) == secret(token.value)
    await b.rest.inquire_price(SYMBOL)
    assert b.wire.count(TOKEN) == 0

    # the broker confirms the minute since its one issue is still running
    again = raw_token(h)
    assert (again.status_code, again.json()["error_code"]) == (403, "EGW00133")


async def test_token_is_refreshed_inside_the_margin_and_the_new_one_shared(h: Harness) -> None:
    a = h.adapter()
    first = await a.rest.access_token()
    # 23h45m later: within the 30-minute refresh margin, not yet expired, past KIS's 6-hour reuse
    h.set_wall(h.wall().now() + timedelta(hours=23, minutes=45))
    await a.rest.inquire_price(SYMBOL)
    second = await a.rest.access_token()
    assert secret(second.value) != secret(first.value)
    assert second.expires_at - first.expires_at > timedelta(hours=23)
    assert a.wire.count(TOKEN) == 2

    b = h.adapter()
    assert secret((await b.rest.access_token()).value) == secret(second.value)
    assert b.wire.count(TOKEN) == 0


async def test_a_token_the_broker_rejects_is_replaced_once_and_the_call_succeeds(h: Harness) -> None:
    a = h.adapter()
    first = await a.rest.access_token()
    b = h.adapter()
    await b.rest.inquire_price(SYMBOL)  # b now holds the same token in memory
    h.set_wall(h.wall().now() + timedelta(minutes=2))  # past the 1-per-minute rule
    revoked = h.sim.http.post(
        "/oauth2/revokeP",
        json={"appkey": secret(h.creds.app_key), "appsecret": secret(h.creds.app_secret), "token": secret(first.value)},
    )
    assert revoked.status_code == 200

    quote = await a.rest.inquire_price(SYMBOL)
    assert quote.symbol == SYMBOL
    assert [s.status for s in a.wire.to(PRICE)] == [500, 200]  # EGW00121, then with the new token
    assert a.wire.count(TOKEN) == 2
    second = await a.rest.access_token()
    assert secret(second.value) != secret(first.value)

    # another process still holding the old token finds the new one in the database
    assert secret((await b.rest.access_token()).value) == secret(first.value)
    ack = await b.rest.order_cash(Side.BUY, SYMBOL, 1, "01")
    assert [s.status for s in b.wire.to(ORDER_CASH)] == [500, 200]  # refused at the gateway, then taken
    assert b.wire.count(TOKEN) == 0
    assert secret((await b.rest.access_token()).value) == secret(second.value)
    assert [o["odno"] for o in h.broker_orders()] == [ack.odno_raw]  # the resend made exactly one order


async def test_egw00133_is_waited_out_not_hammered(h: Harness) -> None:
    assert raw_token(h).status_code == 200  # someone else took this minute's token
    h.set_wall(speed=30.0)  # the gateway's minute passes in two real seconds
    a = h.adapter()

    with pytest.raises(TokenIssueTooOften) as refused:
        await a.rest.inquire_price(SYMBOL)
    assert (refused.value.http_status, refused.value.msg_cd) == (403, "EGW00133")
    assert refused.value.retry_after == 60
    assert a.wire.count(TOKEN) == 1
    assert a.wire.count(PRICE) == 0

    # five callers at once: the client waits out the minute and asks exactly once more
    quotes = await asyncio.gather(*(a.rest.inquire_price(SYMBOL) for _ in range(5)))
    assert {q.symbol for q in quotes} == {SYMBOL}
    sends = a.wire.to(TOKEN)
    assert [s.status for s in sends] == [403, 200]
    gateway_gap = (sends[1].at - sends[0].at) * 30.0
    assert gateway_gap >= 58.0, f"second token request only {gateway_gap:.0f} gateway seconds after the refusal"


async def test_approval_key_needs_no_access_token(h: Harness) -> None:
    a = h.adapter()
    first = await a.rest.approval_key()
    second = await a.rest.approval_key()
    for key in (first, second):
        uuid.UUID(secret(key.value))  # KIS hands out UUID-shaped keys, 36 characters
        assert len(secret(key.value)) == 36
    assert secret(first.value) != secret(second.value)
    assert a.wire.count(APPROVAL) == 2
    assert a.wire.count(TOKEN) == 0


async def test_hashkey_and_orders_that_carry_it(h: Harness) -> None:
    a = h.adapter()
    body = {"CANO": h.creds.cano, "ACNT_PRDT_CD": "01", "PDNO": SYMBOL, "ORD_DVSN": "01", "ORD_QTY": "1",
            "ORD_UNPR": "0"}
    one = await a.rest.hashkey(body)
    assert re.fullmatch(r"[0-9a-f]{64}", one.value)
    assert (await a.rest.hashkey(dict(body))).value == one.value
    assert (await a.rest.hashkey({**body, "ORD_QTY": "2"})).value != one.value
    assert a.wire.count(TOKEN) == 0  # the hashkey call authenticates with appkey/appsecret only

    b = h.adapter(use_hashkey=True)
    ack = await b.rest.order_cash(Side.BUY, SYMBOL, 1, "01")
    sent = [s for s in b.wire.log if TOKEN not in s.path]
    assert [s.path.rsplit("/", 1)[-1] for s in sent] == ["hashkey", "order-cash"]
    assert re.fullmatch(r"[0-9a-f]{64}", sent[1].hashkey)
    assert [o["odno"] for o in h.broker_orders()] == [ack.odno_raw]
    assert b.wire.count(HASHKEY) == 1


# --- orders ---------------------------------------------------------------------------------------


async def test_cash_orders_market_and_limit_buy_and_sell(h: Harness) -> None:
    a = h.adapter()
    book = await a.rest.inquire_asking_price(SYMBOL)
    low = ticks_away(book.bids[0].price, -10)
    high = ticks_away(book.asks[0].price, 10)

    buy_mkt = await a.rest.order_cash(Side.BUY, SYMBOL, 10, "01")
    sell_mkt = await a.rest.order_cash(Side.SELL, SYMBOL, 4, "01")
    buy_lmt = await a.rest.order_cash(Side.BUY, SYMBOL, 3, "00", low)
    sell_lmt = await a.rest.order_cash(Side.SELL, SYMBOL, 6, "00", high)
    for ack in (buy_mkt, sell_mkt, buy_lmt, sell_lmt):
        assert_ack(ack, "06010", "APBK0013")
    assert [s.tr_id for s in a.wire.to(ORDER_CASH)] == ["TTTC0012U", "TTTC0011U", "TTTC0012U", "TTTC0011U"]

    broker = {o["odno"]: o for o in h.broker_orders()}
    seen = [
        (o["side"], o["ord_dvsn"], o["qty"], o["price"], o["status"])
        for o in (broker[x.odno_raw] for x in (buy_mkt, sell_mkt, buy_lmt, sell_lmt))
    ]
    assert seen == [
        ("BUY", "01", 10, 0, "FILLED"),
        ("SELL", "01", 4, 0, "FILLED"),
        ("BUY", "00", 3, low, "ACCEPTED"),
        ("SELL", "00", 6, high, "ACCEPTED"),
    ]
    fills = h.broker_fills()
    assert sum(f["qty"] for f in fills if f["odno"] == buy_mkt.odno_raw) == 10

    # the adapter's own queries agree with the broker
    ccld = await a.rest.inquire_daily_ccld(TRADE_DAY, TRADE_DAY)
    rows = {r.odno: r for r in ccld.rows}
    assert set(rows) == {x.odno for x in (buy_mkt, sell_mkt, buy_lmt, sell_lmt)}
    assert (rows[buy_mkt.odno].tot_ccld_qty, rows[buy_mkt.odno].rmn_qty) == (10, 0)
    assert (rows[sell_lmt.odno].side, rows[sell_lmt.odno].ord_unpr, rows[sell_lmt.odno].rmn_qty) == (
        Side.SELL, high, 6)
    balance = await a.rest.inquire_balance()
    [row] = balance.rows
    assert (row.symbol, row.hldg_qty, row.ord_psbl_qty) == (SYMBOL, 6, 0)  # all six offered by the limit sell


async def test_cash_orders_on_paper(ph: Harness) -> None:
    a = ph.adapter()
    book = await a.rest.inquire_asking_price(SYMBOL)
    buy = await a.rest.order_cash(Side.BUY, SYMBOL, 5, "01")
    sell = await a.rest.order_cash(Side.SELL, SYMBOL, 2, "01")
    rest = await a.rest.order_cash(Side.BUY, SYMBOL, 1, "00", ticks_away(book.bids[0].price, -10))
    for ack in (buy, sell, rest):
        assert_ack(ack, "00950", "40600000")
    assert [s.tr_id for s in a.wire.to(ORDER_CASH)] == ["VTTC0012U", "VTTC0011U", "VTTC0012U"]
    statuses = {o["odno"]: o["status"] for o in ph.broker_orders()}
    assert statuses == {buy.odno_raw: "FILLED", sell.odno_raw: "FILLED", rest.odno_raw: "ACCEPTED"}
    with pytest.raises(BusinessRejected):  # IOC is real-only: paper takes ORD_DVSN 00-04
        await a.rest.order_cash(Side.BUY, SYMBOL, 1, "11", book.asks[0].price)
    assert len(ph.broker_orders()) == 3


async def test_modify_and_cancel_make_new_order_numbers_linked_by_orgn_odno(h: Harness) -> None:
    a = h.adapter()
    book = await a.rest.inquire_asking_price(SYMBOL)
    first_price = ticks_away(book.bids[0].price, -12)
    new_price = ticks_away(book.bids[0].price, -10)

    placed = await a.rest.order_cash(Side.BUY, SYMBOL, 10, "00", first_price)
    modified = await a.rest.modify(placed.odno_raw, placed.org_no, ord_dvsn="00", price=new_price)
    partial = await a.rest.cancel(modified.odno_raw, modified.org_no, 4)
    rest = await a.rest.cancel(modified.odno_raw, modified.org_no)  # the remaining six
    for ack in (modified, partial, rest):
        assert_ack(ack, "06010", "APBK0013")
    assert len({placed.odno, modified.odno, partial.odno, rest.odno}) == 4
    assert [s.tr_id for s in a.wire.to(RVSECNCL)] == ["TTTC0013U"] * 3

    broker = {o["odno"]: o for o in h.broker_orders()}
    assert (broker[placed.odno_raw]["status"], broker[placed.odno_raw]["revised_qty"]) == ("REVISED", 10)
    m = broker[modified.odno_raw]
    assert (m["kind"], m["orgn_odno"], m["qty"], m["price"], m["status"]) == (
        "MODIFY", placed.odno_raw, 10, new_price, "CANCELLED")
    assert m["cancelled_qty"] == 10
    for ack, qty in ((partial, 4), (rest, 6)):
        c = broker[ack.odno_raw]
        assert (c["kind"], c["orgn_odno"], c["qty"]) == ("CANCEL", modified.odno_raw, qty)

    rows = {r.odno: r for r in (await a.rest.inquire_daily_ccld(TRADE_DAY, TRADE_DAY)).rows}
    assert rows[placed.odno].orgn_odno is None
    assert rows[modified.odno].orgn_odno == placed.odno
    assert (rows[modified.odno].ord_unpr, rows[modified.odno].cncl_cfrm_qty) == (new_price, 10)
    assert rows[partial.odno].orgn_odno == rows[rest.odno].orgn_odno == modified.odno
    assert rows[partial.odno].cncl_yn and rows[rest.odno].cncl_yn
    assert await a.rest.inquire_psbl_rvsecncl() == []

    # a modify of part of an order moves only that part; the rest stays at its price
    other = await a.rest.order_cash(Side.BUY, SYMBOL, 10, "00", first_price)
    part = await a.rest.modify(other.odno_raw, other.org_no, ord_dvsn="00", price=new_price, qty=4)
    left = {(r.odno, r.ord_unpr, r.psbl_qty) for r in await a.rest.inquire_psbl_rvsecncl()}
    assert left == {(other.odno, first_price, 6), (part.odno, new_price, 4)}
    assert {o["odno"]: o["orgn_odno"] for o in h.broker_orders()}[part.odno_raw] == other.odno_raw

    with pytest.raises(BusinessRejected):  # nothing left to cancel
        await a.rest.cancel(modified.odno_raw, modified.org_no)
    assert len(h.broker_orders()) == 6


async def test_daily_ccld_pages_through_three_pages_on_paper(ph: Harness) -> None:
    a = ph.adapter()
    book = await a.rest.inquire_asking_price(SYMBOL)
    acks = [
        await a.rest.order_cash(Side.BUY, SYMBOL, 1 + i % 3, "00", ticks_away(book.bids[0].price, -10 - i % 5))
        for i in range(32)
    ]
    ccld = await a.rest.inquire_daily_ccld(TRADE_DAY, TRADE_DAY)
    assert [r.odno for r in ccld.rows] == [x.odno for x in reversed(acks)]  # newest first, none twice
    pages = a.wire.to(DAILY_CCLD)
    assert [(s.tr_id, s.tr_cont) for s in pages] == [("VTTC0081R", ""), ("VTTC0081R", "N"), ("VTTC0081R", "N")]
    assert ccld.summary is not None and ccld.summary.tot_ord_qty == sum(1 + i % 3 for i in range(32))

    oldest = await a.rest.inquire_daily_ccld(TRADE_DAY, TRADE_DAY, oldest_first=True)
    assert [r.odno for r in oldest.rows] == [x.odno for x in acks]
    unfilled = await a.rest.inquire_daily_ccld(TRADE_DAY, TRADE_DAY, ccld_dvsn=CcldDvsn.UNFILLED)
    assert len(unfilled.rows) == 32
    assert (await a.rest.inquire_daily_ccld(TRADE_DAY, TRADE_DAY, ccld_dvsn=CcldDvsn.FILLED)).rows == []
    one = await a.rest.inquire_daily_ccld(TRADE_DAY, TRADE_DAY, odno=acks[7].odno)
    assert [r.odno for r in one.rows] == [acks[7].odno]


async def test_balance_pages_on_paper(ph: Harness) -> None:
    a = ph.adapter()
    listed = ph.sim.get("/sim/symbols")["symbols"]
    codes = sorted(s["symbol"] for s in listed if s["tier"] <= 1 and not s["halted"] and s["base_price"] < 300_000)
    chosen = codes[:22]
    for code in chosen:
        await a.rest.order_cash(Side.BUY, code, 1, "01")
    assert {o["status"] for o in ph.broker_orders()} == {"FILLED"}

    balance = await a.rest.inquire_balance()
    assert sorted(r.symbol for r in balance.rows) == chosen
    assert {r.hldg_qty for r in balance.rows} == {1}
    assert [(s.tr_id, s.tr_cont) for s in a.wire.to(BALANCE)] == [("VTTC8434R", ""), ("VTTC8434R", "N")]
    assert balance.summary is not None
    bought = sum(f["qty"] * f["price"] for f in ph.broker_fills())
    assert balance.summary.thdt_buy_amt == bought
    assert sum(r.pchs_amt for r in balance.rows) == bought


async def test_psbl_order_sizes_a_market_buy_that_cash_over_price_would_not(h: Harness) -> None:
    a = h.adapter()
    quote = await a.rest.inquire_price(SYMBOL)
    psbl = await a.rest.inquire_psbl_order(SYMBOL)  # ORD_DVSN 01: market, reserved at the upper limit
    assert psbl.psbl_qty_calc_unpr == quote.upper_limit
    assert psbl.nrcvb_buy_qty * quote.upper_limit <= psbl.ord_psbl_cash < (psbl.nrcvb_buy_qty + 1) * quote.upper_limit

    naive = psbl.ord_psbl_cash // quote.price
    with pytest.raises(BusinessRejected) as refused:
        await a.rest.order_cash(Side.BUY, SYMBOL, naive, "01")
    assert refused.value.msg_cd == "APBK0952"
    assert refused.value.raw is not None and refused.value.raw["rt_cd"] == "7"
    assert a.wire.count(ORDER_CASH) == 1  # a business rejection is final: not retried
    assert h.broker_orders() == []

    ack = await a.rest.order_cash(Side.BUY, SYMBOL, psbl.nrcvb_buy_qty, "01")
    [order] = h.broker_orders()
    assert (order["odno"], order["qty"]) == (ack.odno_raw, psbl.nrcvb_buy_qty)

    at_price = await a.rest.inquire_psbl_order(SYMBOL, quote.price, "00")
    assert at_price.psbl_qty_calc_unpr == quote.price
    assert at_price.ord_psbl_cash < psbl.ord_psbl_cash  # the market buy's reservation is gone


async def test_psbl_rvsecncl_lists_open_orders_with_their_cancellable_qty(h: Harness) -> None:
    a = h.adapter()
    book = await a.rest.inquire_asking_price(SYMBOL)
    filled = await a.rest.order_cash(Side.BUY, SYMBOL, 2, "01")
    resting = [
        await a.rest.order_cash(Side.BUY, SYMBOL, qty, "00", ticks_away(book.bids[0].price, -10 - qty))
        for qty in (3, 5)
    ]
    rows = await a.rest.inquire_psbl_rvsecncl()
    expected = {(resting[0].odno, 3, Side.BUY), (resting[1].odno, 5, Side.BUY)}
    assert {(r.odno, r.psbl_qty, r.side) for r in rows} == expected
    assert filled.odno not in {r.odno for r in rows}
    await a.rest.cancel(resting[0].odno_raw, resting[0].org_no, 1)
    left = {r.odno: r.psbl_qty for r in await a.rest.inquire_psbl_rvsecncl()}
    assert left == {resting[0].odno: 2, resting[1].odno: 5}
    assert {s.tr_id for s in a.wire.to("inquire-psbl-rvsecncl")} == {"TTTC0084R"}


async def test_psbl_rvsecncl_and_volume_rank_do_not_exist_on_paper(ph: Harness) -> None:
    a = ph.adapter()
    with pytest.raises(ServiceNotFound) as missing:
        await a.rest.inquire_psbl_rvsecncl()
    assert missing.value.msg_cd == "MCA00124"
    with pytest.raises(ServiceNotFound):
        await a.rest.volume_rank()
    # not a transient failure: each asked exactly once
    assert a.wire.count("inquire-psbl-rvsecncl") == 1
    assert a.wire.count("volume-rank") == 1


# --- quotations -----------------------------------------------------------------------------------


async def test_price_asking_price_and_minute_bars_agree(h: Harness) -> None:
    a = h.adapter()
    quote = await a.rest.inquire_price(SYMBOL)
    lower, upper = price_limits(71_000, Market.KOSPI)
    assert (quote.symbol, quote.base_price, quote.upper_limit, quote.lower_limit) == (SYMBOL, 71_000, upper, lower)
    assert quote.tick == tick_size(quote.price, Market.KOSPI)
    assert lower <= quote.low <= quote.price <= quote.high <= upper
    assert quote.change == quote.price - quote.base_price
    assert quote.acml_vol > 0 and not quote.halted

    book = await a.rest.inquire_asking_price(SYMBOL)
    assert len(book.asks) == len(book.bids) == 10
    assert [x.price for x in book.asks] == sorted(x.price for x in book.asks)
    assert [x.price for x in book.bids] == sorted((x.price for x in book.bids), reverse=True)
    assert book.bids[0].price < book.asks[0].price
    assert book.total_ask_qty >= sum(x.qty for x in book.asks) > 0

    now = kst(h.clock().now()).time()
    bars = await a.rest.inquire_minute_bars(SYMBOL, now)
    assert len(bars.bars) == 30
    times = [datetime.combine(b.day, b.time) for b in bars.bars]
    assert times == sorted(times, reverse=True)
    assert all(x - y == timedelta(minutes=1) for x, y in itertools.pairwise(times))
    assert bars.bars[0].time <= now
    assert all(b.low <= min(b.open, b.close) and max(b.open, b.close) <= b.high for b in bars.bars)
    # walking back: the next call ends one minute before the oldest bar, without overlap
    before = (times[-1] - timedelta(minutes=1)).time()
    earlier = await a.rest.inquire_minute_bars(SYMBOL, before)
    assert earlier.bars[0].time == before
    assert earlier.bars[-1].time >= time(9, 0)


async def test_volume_rank_on_real(h: Harness) -> None:
    a = h.adapter()
    rows = await a.rest.volume_rank()
    assert 0 < len(rows) <= 30
    assert [r.rank for r in rows] == list(range(1, len(rows) + 1))
    assert [r.acml_vol for r in rows] == sorted((r.acml_vol for r in rows), reverse=True)
    assert len({r.symbol for r in rows}) == len(rows)
    cheap = await a.rest.volume_rank(min_price=5_000, max_price=50_000)
    assert all(5_000 <= r.price <= 50_000 for r in cheap)
