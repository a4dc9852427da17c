"""Contract: the KIS WebSocket client against the running simulator.

The real ``KisWebSocketClient`` (approval key from the real REST client, PINGPONG echo, AES
notice decryption, desired-set bookkeeping, reconnect) on a real socket to the simulator.
"""

from __future__ import annotations

import asyncio
import time as wall
from collections.abc import Callable
from datetime import datetime, time, timedelta

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from stock_manager.services.kis_sim.config import SimConfig
from stock_manager.shared.db.pool import open_pool
from stock_manager.shared.kis.endpoints import WS_NOTICE_TR, KisEnv
from stock_manager.shared.kis.models import Side
from stock_manager.shared.kis.ws import (
    Connected,
    Disconnected,
    MalformedFrame,
    ReconnectPolicy,
    Subscribed,
    Subscription,
    SubscriptionFailed,
    TooManySubscriptions,
    WsEvent,
)
from stock_manager.shared.kis.ws_frames import ExecutionNotice, RctfCls, Trade, subscribe_message
from stock_manager.shared.market_rules import ticks_away
from tests.contract.support import APPROVAL, Harness, ThreadSim, new_credentials, secret
from tests.contract.test_kis_contract import TRADE_DAY
from tests.support.pg import TestDb
from tests.support.sim import MONDAY_10AM

SYMBOL = "005930"
LIQUID = ("005930", "000660", "035420")  # tier 0: several prints per market second


def trades(events: list[WsEvent]) -> list[Trade]:
    return [e for e in events if isinstance(e, Trade)]


def notices(events: list[WsEvent], odno: str) -> list[ExecutionNotice]:
    return [e for e in events if isinstance(e, ExecutionNotice) and e.odno == odno]


def subscribed(events: list[WsEvent]) -> set[Subscription]:
    return {e.subscription for e in events if isinstance(e, Subscribed)}


def streaming_again(wanted: set[Subscription], sessions: int) -> Callable[[list[WsEvent]], bool]:
    """Whether the ``sessions``-th session (or a later one) registered ``wanted`` and has traded."""

    def done(events: list[WsEvent]) -> bool:
        starts = [i for i, e in enumerate(events) if isinstance(e, Connected)]
        if len(starts) < sessions:
            return False
        since = events[starts[-1] :]
        return subscribed(since) == wanted and bool(trades(since))

    return done


async def test_trades_for_several_symbols_arrive_parsed(h: Harness) -> None:
    a = h.adapter()
    ws = h.websocket(a)
    log = h.events(ws)
    wanted = {Subscription.trades(code) for code in LIQUID}
    ws.replace(wanted)
    ws.start()
    await log.wait_for(lambda ev: {t.symbol for t in trades(ev)} == set(LIQUID), 15, "a trade of each symbol")

    assert subscribed(log.events) == wanted == ws.active
    assert not log.of(MalformedFrame)
    for t in trades(log.events):
        assert t.business_date == TRADE_DAY
        assert time(10, 0) <= t.time < time(10, 5)
        assert t.volume > 0 and t.cum_volume >= t.volume
        assert t.low <= t.price <= t.high
        assert t.session_code == "20" and not t.halted
    last = [t for t in trades(log.events) if t.symbol == SYMBOL][-1]
    quote = await a.rest.inquire_price(SYMBOL)  # REST and the stream describe one market
    assert quote.acml_vol >= last.cum_volume
    assert quote.low <= last.price <= quote.high
    assert a.wire.count(APPROVAL) == 1


async def _fill_notices(harness: Harness) -> None:
    a = harness.adapter()
    ws = harness.websocket(a)
    log = harness.events(ws)
    ws.subscribe(Subscription.notices(harness.env))
    ws.start()
    await log.wait_for(lambda ev: bool(subscribed(ev)), 10, "the notice subscription")
    [sub] = subscribed(log.events)
    assert sub.tr_id == WS_NOTICE_TR[harness.env]

    ack = await a.rest.order_cash(Side.BUY, SYMBOL, 7, "01")
    await log.wait_for(
        lambda ev: sum(n.qty for n in notices(ev, ack.odno) if n.is_fill) == 7, 10, "fill notices for 7 shares"
    )
    mine = notices(log.events, ack.odno)
    accepted = [n for n in mine if not n.is_fill]
    assert [(n.acpt_yn, n.qty, n.rctf_cls, n.is_reject, n.side) for n in accepted] == [
        ("1", 7, RctfCls.NORMAL, False, Side.BUY)
    ]
    fills = [(n.qty, n.price) for n in mine if n.is_fill]
    broker = [(f["qty"], f["price"]) for f in harness.broker_fills() if f["odno"] == ack.odno_raw]
    assert fills == broker
    assert {(n.symbol, n.order_qty, n.field_count) for n in mine} == {(SYMBOL, 7, 26)}
    assert not log.of(MalformedFrame)

    # a cancel is an order event on the same feed, linked to the original by OODER_NO
    book = await a.rest.inquire_asking_price(SYMBOL)
    placed = await a.rest.order_cash(Side.BUY, SYMBOL, 2, "00", ticks_away(book.bids[0].price, -10))
    cancel = await a.rest.cancel(placed.odno_raw, placed.org_no)
    await log.wait_for(lambda ev: bool(notices(ev, cancel.odno)), 10, "the cancel notice")
    [event] = notices(log.events, cancel.odno)
    assert (event.rctf_cls, event.oodno, event.is_fill, event.qty) == (RctfCls.CANCEL, placed.odno, False, 2)


async def test_fill_notices_arrive_decrypted_on_real(h: Harness) -> None:
    await _fill_notices(h)


async def test_fill_notices_arrive_decrypted_on_paper(ph: Harness) -> None:
    await _fill_notices(ph)


async def test_reconnects_and_resubscribes_when_the_broker_drops_the_session(h: Harness) -> None:
    a = h.adapter()
    ws = h.websocket(a)
    log = h.events(ws)
    wanted = {Subscription.trades("005930"), Subscription.trades("000660"), Subscription.notices(h.env)}
    ws.replace(wanted)
    ws.start()
    await log.wait_for(lambda ev: subscribed(ev) == wanted, 10, "the first subscriptions")

    h.faults(ws_drop_every_s=2)
    try:
        await log.wait_for(streaming_again(wanted, 3), 20, "two reconnects, each resubscribed and streaming again")
    finally:
        h.faults(ws_drop_every_s=0)
    assert len(log.of(Disconnected)) >= 2
    assert [e.session for e in log.of(Connected)][:3] == [1, 2, 3]
    # every session re-registered the whole desired set, and nothing else
    assert {e.subscription for e in log.of(Subscribed)} == wanted
    assert a.wire.count(APPROVAL) == 1  # the approval key outlives the sessions

    # notices on the new session come with a new AES key, and still decrypt
    await log.wait_for(lambda ev: ws.active == wanted, 10, "the last session registered")
    ack = await a.rest.order_cash(Side.BUY, SYMBOL, 3, "01")
    await log.wait_for(lambda ev: sum(n.qty for n in notices(ev, ack.odno) if n.is_fill) == 3, 10, "fill notices")
    assert not log.of(MalformedFrame)


async def test_a_reconnect_after_the_approval_key_expired_fetches_a_new_one_and_resubscribes(h: Harness) -> None:
    """KIS's approval keys last 24 hours and are read when a session connects (facts §2.2): an open
    session outlives its key, a new one with it is refused (OPSP0011), and the client then asks for
    another key, though by its own clock the old one is young."""
    a = h.adapter()
    ws = h.websocket(a)
    log = h.events(ws)
    wanted = {Subscription.trades("005930"), Subscription.trades("000660")}
    ws.replace(wanted)
    ws.start()
    await log.wait_for(lambda ev: subscribed(ev) == wanted, 10, "the first subscriptions")

    h.set_wall(h.wall().now() + timedelta(hours=25))
    book = Subscription.orderbook(SYMBOL)
    wanted.add(book)
    ws.subscribe(book)
    await log.wait_for(lambda ev: book in subscribed(ev), 10, "a registration on the session after its key expired")
    assert a.wire.count(APPROVAL) == 1 and not log.of(Disconnected)

    h.faults(ws_drop_every_s=1)
    try:
        await log.wait_for(lambda ev: bool(log.of(Disconnected)), 10, "the broker dropping the session")
    finally:
        h.faults(ws_drop_every_s=0)

    await log.wait_for(streaming_again(wanted, 3), 20, "a session on a new key, resubscribed and streaming")
    assert [e.session for e in log.of(Connected)][:3] == [1, 2, 3]
    refused = log.of(SubscriptionFailed)
    assert refused and {e.msg_cd for e in refused} == {"OPSP0011"}  # the second session, on the old key
    assert a.wire.count(APPROVAL) == 2
    assert ws.active == wanted


async def test_the_42nd_registration_is_refused_with_opsp0008(h: Harness) -> None:
    a = h.adapter()
    listed = h.sim.get("/sim/symbols")["symbols"]
    codes = sorted(s["symbol"] for s in listed if not s["halted"])[:42]
    wanted = [Subscription.trades(code) for code in codes]

    with pytest.raises(TooManySubscriptions):
        h.websocket(a).replace(wanted)  # the client knows KIS's 41

    ws = h.websocket(a, max_registrations=42)  # ... so lift it to see the broker refuse
    log = h.events(ws)
    ws.replace(wanted)
    ws.start()
    await log.wait_for(lambda ev: len(subscribed(ev)) + len(log.of(SubscriptionFailed)) == 42, 15, "42 answers")
    [refused] = log.of(SubscriptionFailed)
    assert refused.msg_cd == "OPSP0008"
    assert len(ws.active) == 41 and ws.failed == {refused.subscription}

    # freeing a slot and asking again (never done by the client on its own) gets it in
    ws.unsubscribe(next(iter(ws.active)))
    ws.retry_failed()
    await log.wait_for(lambda ev: refused.subscription in subscribed(ev), 10, "the refused registration")
    assert len(ws.active) == 41 and not ws.failed


async def test_a_second_session_for_the_same_app_key_is_refused(h: Harness) -> None:
    a = h.adapter()
    first = h.websocket(a)
    first_log = h.events(first)
    first.subscribe(Subscription.trades(SYMBOL))
    first.start()
    await first_log.wait_for(lambda ev: bool(trades(ev)), 10, "the first session streaming")

    slow = ReconnectPolicy(initial=30.0, min_interval=30.0, jitter=0.0)
    second = h.websocket(a, reconnect=slow)
    second_log = h.events(second)
    second.subscribe(Subscription.trades("000660"))
    second.start()
    await second_log.wait_for(lambda ev: bool(second_log.of(SubscriptionFailed)), 10, "the refusal")
    assert [e.msg_cd for e in second_log.of(SubscriptionFailed)] == ["OPSP8996"]

    seen = len(trades(first_log.events))
    await first_log.wait_for(lambda ev: len(trades(ev)) > seen, 10, "the first session still streaming")


async def read_until_closed(conn: ClientConnection) -> None:
    while True:
        await conn.recv()


async def test_the_session_lives_on_by_answering_pingpong(db: TestDb) -> None:
    # PINGPONG every 0.3 s, a session silent for 1 s is dropped: only the in-thread simulator
    # takes these settings (the command line has no flag for them)
    config = SimConfig(env="real", clock_start=datetime.fromisoformat(MONDAY_10AM), universe_size=600,
                       pingpong_interval_s=0.3, pingpong_timeout_s=1.0)
    sim = ThreadSim(config).start()
    pool = await open_pool(db.url("execution"), max_size=4)
    h = Harness(sim, db, pool, KisEnv.REAL, rate_limit=20)
    try:
        a = h.adapter()
        ws = h.websocket(a)
        log = h.events(ws)
        ws.subscribe(Subscription.trades(SYMBOL))
        ws.start()
        await log.wait_for(lambda ev: bool(trades(ev)), 10, "trades")
        await asyncio.sleep(3.0)  # three times the broker's patience
        seen = len(trades(log.events))
        await log.wait_for(lambda ev: len(trades(ev)) > seen, 5, "trades still flowing")
        assert [type(e).__name__ for e in log.events if isinstance(e, Connected | Disconnected)] == ["Connected"]

        # the control: a session that does not answer is dropped within that time
        other = h.adapter(new_credentials())
        approval = secret((await other.rest.approval_key()).value)
        async with connect(sim.ws_url) as raw:
            await raw.send(subscribe_message(approval, "H0STCNT0", "000660"))
            started = wall.monotonic()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(read_until_closed(raw), 5)
            assert wall.monotonic() - started < 3
    finally:
        await h.aclose()
        await pool.close()
        sim.stop()
