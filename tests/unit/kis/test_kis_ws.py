"""KisWebSocketClient against a small local ``websockets`` server speaking the KIS protocol."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from stock_manager.shared.kis import ws_frames as wf
from stock_manager.shared.kis.endpoints import KisEnv
from stock_manager.shared.kis.models import ApprovalKey
from stock_manager.shared.kis.ws import (
    Connected,
    ControlError,
    Disconnected,
    KisWebSocketClient,
    MalformedFrame,
    ReconnectPolicy,
    Subscribed,
    Subscription,
    SubscriptionFailed,
    TooManySubscriptions,
    Unsubscribed,
    WsEvent,
)
from stock_manager.shared.kis.ws_frames import ExecutionNotice, Trade

from .conftest import HTS_ID
from .test_kis_frames import TRADE, notice_fields

KEY = "tvldhmfplvgcovaqrspclzhdotfzzequ"
IV = "55ce3d099479ce11"
APPROVAL = "approval-SECRET-uuid"
PING = '{"header":{"tr_id":"PINGPONG","datetime":"20260914093000"}}'

A, B, C = Subscription.trades("005930"), Subscription.trades("000660"), Subscription.orderbook("005930")


@dataclass
class FakeKisWs:
    """Registers per connection, acks with key/iv, refuses over ``max_regs`` with OPSP0008."""

    max_regs: int = 41
    received: list[dict[str, object]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    connections: list[ServerConnection] = field(default_factory=list)
    regs: list[set[tuple[str, str]]] = field(default_factory=list)

    async def handler(self, conn: ServerConnection) -> None:
        self.connections.append(conn)
        regs: set[tuple[str, str]] = set()
        self.regs.append(regs)
        with contextlib.suppress(ConnectionClosed):
            await self._serve(conn, regs)

    async def _serve(self, conn: ServerConnection, regs: set[tuple[str, str]]) -> None:
        async for raw in conn:
            text = raw if isinstance(raw, str) else raw.decode()
            self.texts.append(text)
            msg = json.loads(text)
            if msg["header"].get("tr_id") == "PINGPONG":
                continue
            self.received.append(msg)
            tr_id, tr_key = msg["body"]["input"]["tr_id"], msg["body"]["input"]["tr_key"]
            if msg["header"]["tr_type"] == "1":
                if len(regs) >= self.max_regs:
                    await conn.send(
                        wf.ack_message(tr_id, tr_key, rt_cd="1", msg_cd="OPSP0008", msg1="MAX SUBSCRIBE OVER")
                    )
                    continue
                regs.add((tr_id, tr_key))
                await conn.send(wf.ack_message(tr_id, tr_key, key=KEY, iv=IV))
            else:
                regs.discard((tr_id, tr_key))
                await conn.send(wf.ack_message(tr_id, tr_key, msg1="UNSUBSCRIBE SUCCESS", key=KEY, iv=IV))

    def subscribes(self) -> list[tuple[str, str]]:
        return [
            (m["body"]["input"]["tr_id"], m["body"]["input"]["tr_key"])  # type: ignore[index]
            for m in self.received
            if m["header"]["tr_type"] == "1"  # type: ignore[index]
        ]

    def unsubscribes(self) -> list[tuple[str, str]]:
        return [
            (m["body"]["input"]["tr_id"], m["body"]["input"]["tr_key"])  # type: ignore[index]
            for m in self.received
            if m["header"]["tr_type"] == "2"  # type: ignore[index]
        ]


class Approvals:
    def __init__(self) -> None:
        self.calls = 0

    async def approval_key(self) -> ApprovalKey:
        self.calls += 1
        return ApprovalKey(SecretStr(APPROVAL))


FAST = ReconnectPolicy(initial=0.02, maximum=0.1, multiplier=2.0, jitter=0.0, min_interval=0.05, stable_after=10.0)


@pytest.fixture
async def server() -> AsyncIterator[tuple[FakeKisWs, str]]:
    fake = FakeKisWs()
    async with serve(fake.handler, "127.0.0.1", 0) as srv:
        yield fake, url_of(srv)


def url_of(srv: Server) -> str:
    host, port = next(iter(srv.sockets)).getsockname()[:2]
    return f"ws://{host}:{port}"


@pytest.fixture
async def client(server: tuple[FakeKisWs, str]) -> AsyncIterator[tuple[KisWebSocketClient, Approvals]]:
    approvals = Approvals()
    ws = KisWebSocketClient(approvals, env=KisEnv.REAL, url=server[1], hts_id=SecretStr(HTS_ID), reconnect=FAST)
    async with ws:
        yield ws, approvals


async def next_matching(
    events: AsyncIterator[WsEvent], pred: Callable[[WsEvent], bool], seen: list[WsEvent]
) -> WsEvent:
    async def scan() -> WsEvent:
        async for ev in events:
            seen.append(ev)
            if pred(ev):
                return ev
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(scan(), 3.0)


async def wait_until(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def test_subscribe_acks_and_data(
    server: tuple[FakeKisWs, str], client: tuple[KisWebSocketClient, Approvals]
) -> None:
    fake, _ = server
    ws, _ = client
    events = ws.events()
    seen: list[WsEvent] = []
    ws.replace([A, C, Subscription.notices(KisEnv.REAL)])
    await next_matching(events, lambda ev: isinstance(ev, Connected), seen)
    await wait_until(lambda: len(ws.active) == 3)
    assert sorted(fake.subscribes()) == sorted([("H0STCNT0", "005930"), ("H0STASP0", "005930"), ("H0STCNI0", HTS_ID)])
    assert fake.received[0]["header"] == {
        "approval_key": APPROVAL,
        "custtype": "P",
        "tr_type": "1",
        "content-type": "utf-8",
    }

    conn = fake.connections[0]
    await conn.send(wf.data_frame("H0STCNT0", [TRADE, TRADE]))
    await conn.send(wf.data_frame("H0STCNI0", [notice_fields()], key=KEY, iv=IV))
    trades = [await next_matching(events, lambda ev: isinstance(ev, Trade), seen) for _ in range(2)]
    notice = await next_matching(events, lambda ev: isinstance(ev, ExecutionNotice), seen)
    assert all(isinstance(t, Trade) and t.symbol == "005930" for t in trades)
    assert isinstance(notice, ExecutionNotice)
    assert notice.is_fill
    subscribed = {ev.subscription for ev in seen if isinstance(ev, Subscribed)}
    assert Subscription.notices(KisEnv.REAL) in subscribed
    for ev in seen:
        assert HTS_ID not in repr(ev)
        assert APPROVAL not in repr(ev)


async def test_pingpong_is_echoed(server: tuple[FakeKisWs, str], client: tuple[KisWebSocketClient, Approvals]) -> None:
    fake, _ = server
    ws, _ = client
    ws.replace([A])
    await wait_until(lambda: len(fake.connections) == 1 and ws.active == {A})
    await fake.connections[0].send(PING)
    await wait_until(lambda: PING in fake.texts)
    assert fake.texts.count(PING) == 1


async def test_reconnect_resubscribes_after_server_drop(
    server: tuple[FakeKisWs, str], client: tuple[KisWebSocketClient, Approvals]
) -> None:
    fake, _ = server
    ws, approvals = client
    events = ws.events()
    seen: list[WsEvent] = []
    ws.replace([A, B])
    await wait_until(lambda: ws.active == {A, B})
    await fake.connections[0].close(code=1011)
    dropped = await next_matching(events, lambda ev: isinstance(ev, Disconnected), seen)
    assert isinstance(dropped, Disconnected)
    again = await next_matching(events, lambda ev: isinstance(ev, Connected) and ev.session == 2, seen)
    assert isinstance(again, Connected)
    await wait_until(lambda: ws.active == {A, B} and len(fake.regs) == 2 and len(fake.regs[1]) == 2)
    assert fake.regs[1] == {("H0STCNT0", "005930"), ("H0STCNT0", "000660")}
    assert len(fake.subscribes()) == 4  # two per session, nothing more
    assert approvals.calls == 1  # the approval key is reused across reconnects


async def test_reconnects_back_off_and_respect_min_interval() -> None:
    fake = FakeKisWs()
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def slam(conn: ServerConnection) -> None:
        starts.append(loop.time())
        await conn.close()

    async with serve(slam, "127.0.0.1", 0) as srv:
        policy = ReconnectPolicy(initial=0.01, maximum=0.2, jitter=0.0, min_interval=0.1, stable_after=10.0)
        ws = KisWebSocketClient(Approvals(), env=KisEnv.PAPER, url=url_of(srv), reconnect=policy)
        async with ws:
            events = ws.events()
            seen: list[WsEvent] = []
            for _ in range(4):
                await next_matching(events, lambda ev: isinstance(ev, Disconnected), seen)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) >= 4
    assert all(g >= 0.09 for g in gaps), gaps
    waits = [ev.retry_in for ev in seen if isinstance(ev, Disconnected)]
    assert waits[:4] == [0.01, 0.02, 0.04, 0.08]
    assert fake.connections == []


async def test_max_subscribe_over_is_reported_and_not_retried(server: tuple[FakeKisWs, str]) -> None:
    fake, url = server
    fake.max_regs = 2
    ws = KisWebSocketClient(Approvals(), env=KisEnv.REAL, url=url, reconnect=FAST)
    async with ws:
        events = ws.events()
        seen: list[WsEvent] = []
        ws.replace([A, B, C])
        failed = await next_matching(events, lambda ev: isinstance(ev, SubscriptionFailed), seen)
        assert isinstance(failed, SubscriptionFailed)
        assert failed.msg_cd == "OPSP0008"
        assert failed.subscription == A  # sent in sorted order: H0STASP0 005930, H0STCNT0 000660, H0STCNT0 005930
        await wait_until(lambda: ws.active == {B, C})
        await asyncio.sleep(0.2)
        assert len(fake.subscribes()) == 3  # one attempt each, no loop
        # Freeing a slot does not resend the refused one by itself either.
        ws.unsubscribe(C)
        await wait_until(lambda: fake.unsubscribes() == [("H0STASP0", "005930")])
        await asyncio.sleep(0.1)
        assert len(fake.subscribes()) == 3
        # Re-adding it to the desired set is not a new request either (callers refresh their lists).
        ws.replace([A, B])
        await asyncio.sleep(0.1)
        assert ws.failed == {A}
        # Only an explicit retry sends it again, once.
        ws.retry_failed()
        await wait_until(lambda: A in ws.active)
        assert len(fake.subscribes()) == 4


async def test_replace_sends_only_the_difference(
    server: tuple[FakeKisWs, str], client: tuple[KisWebSocketClient, Approvals]
) -> None:
    fake, _ = server
    ws, _ = client
    events = ws.events()
    seen: list[WsEvent] = []
    ws.replace([A, B])
    await wait_until(lambda: ws.active == {A, B})
    ws.replace([B, C])
    await next_matching(events, lambda ev: isinstance(ev, Unsubscribed), seen)
    await wait_until(lambda: ws.active == {B, C})
    assert fake.unsubscribes() == [("H0STCNT0", "005930")]
    assert sorted(fake.subscribes()) == sorted([("H0STCNT0", "005930"), ("H0STCNT0", "000660"), ("H0STASP0", "005930")])
    assert fake.received[-2]["header"]["tr_type"] == "2"  # type: ignore[index]


def test_client_side_cap_and_hts_id_requirement() -> None:
    ws = KisWebSocketClient(Approvals(), env=KisEnv.REAL, url="ws://127.0.0.1:9")
    with pytest.raises(TooManySubscriptions):
        ws.replace(Subscription.trades(f"{i:06d}") for i in range(42))
    ws.replace(Subscription.trades(f"{i:06d}") for i in range(41))
    with pytest.raises(ValueError, match="HTS ID"):
        ws.replace([Subscription.notices(KisEnv.REAL)])


async def test_malformed_frames_are_reported_and_the_session_continues(
    server: tuple[FakeKisWs, str], client: tuple[KisWebSocketClient, Approvals]
) -> None:
    fake, _ = server
    ws, _ = client
    events = ws.events()
    seen: list[WsEvent] = []
    ws.replace([A])
    await wait_until(lambda: ws.active == {A})
    conn = fake.connections[0]
    await conn.send("garbage")
    await conn.send("0|H0STCNT0|001|005930^not^enough")
    await conn.send('{"header":{"tr_id":"H0STCNI0","tr_key":"' + HTS_ID + '"')  # broken JSON echoing the HTS ID
    await conn.send("1|H0STCNI0|001|" + wf.aes_encrypt("^".join(notice_fields()), KEY, IV))  # no key for CNI yet
    await conn.send(wf.data_frame("H0STCNT0", [TRADE]))
    await next_matching(events, lambda ev: isinstance(ev, Trade), seen)
    bad = [ev for ev in seen if isinstance(ev, MalformedFrame)]
    assert [b.raw[:8] for b in bad] == ["garbage", "0|H0STCN", '{"header', "1|H0STCN"]
    assert all(HTS_ID not in b.raw for b in bad)
    assert ws.connected


async def test_unsolicited_control_error_is_reported(
    server: tuple[FakeKisWs, str], client: tuple[KisWebSocketClient, Approvals]
) -> None:
    fake, _ = server
    ws, _ = client
    events = ws.events()
    seen: list[WsEvent] = []
    ws.replace([A])
    await wait_until(lambda: ws.active == {A})
    await fake.connections[0].send(
        json.dumps({"header": {"tr_id": ""}, "body": {"rt_cd": "9", "msg_cd": "OPSP8996", "msg1": "ALREADY IN USE"}})
    )
    err = await next_matching(events, lambda ev: isinstance(ev, ControlError), seen)
    assert isinstance(err, ControlError)
    assert err.msg_cd == "OPSP8996"


async def test_close_ends_the_event_stream(server: tuple[FakeKisWs, str]) -> None:
    ws = KisWebSocketClient(Approvals(), env=KisEnv.REAL, url=server[1], reconnect=FAST)
    async with ws:
        ws.replace([A])
        await wait_until(lambda: ws.active == {A})
    collected = [ev async for ev in ws.events()]
    assert any(isinstance(ev, Subscribed) for ev in collected)


async def refused_on_first_session(
    rt_cd: str, msg_cd: str, msg1: str, *, then_close: bool
) -> tuple[list[WsEvent], int]:
    """A server that answers every registration of its first session with ``msg_cd`` (closing that
    session after the first answer if ``then_close``) and acks on later ones; the client's events
    until a registration is accepted, and how many approval keys it asked for."""
    sessions = 0

    async def handler(conn: ServerConnection) -> None:
        nonlocal sessions
        sessions += 1
        first = sessions == 1
        with contextlib.suppress(ConnectionClosed):
            async for raw in conn:
                msg = json.loads(raw)
                tr_id, tr_key = msg["body"]["input"]["tr_id"], msg["body"]["input"]["tr_key"]
                if not first:
                    await conn.send(wf.ack_message(tr_id, tr_key, key=KEY, iv=IV))
                    continue
                await conn.send(wf.ack_message(tr_id, tr_key, rt_cd=rt_cd, msg_cd=msg_cd, msg1=msg1))
                if then_close:
                    await conn.close()

    approvals = Approvals()
    seen: list[WsEvent] = []
    async with serve(handler, "127.0.0.1", 0) as srv:
        ws = KisWebSocketClient(approvals, env=KisEnv.REAL, url=url_of(srv), reconnect=FAST)
        async with ws:
            events = ws.events()
            ws.replace([A])
            failed = await next_matching(events, lambda ev: isinstance(ev, SubscriptionFailed), seen)
            assert isinstance(failed, SubscriptionFailed) and failed.msg_cd == msg_cd
            await next_matching(events, lambda ev: isinstance(ev, Subscribed), seen)
            assert ws.active == {A}
    return seen, approvals.calls


async def test_session_in_use_refetches_approval_and_backs_off() -> None:
    seen, approvals = await refused_on_first_session("1", "OPSP8996", "ALREADY IN USE", then_close=True)
    assert [e.session for e in seen if isinstance(e, Connected)] == [1, 2]
    assert approvals == 2


async def test_a_refused_approval_key_ends_the_session_and_a_new_key_is_fetched() -> None:
    # OPSP0011 leaves the session open with nothing registered: the client must not sit on it
    seen, approvals = await refused_on_first_session("9", "OPSP0011", "invalid approval : NOT FOUND", then_close=False)
    status = [type(e).__name__ for e in seen if isinstance(e, Connected | Disconnected)]
    assert status == ["Connected", "Disconnected", "Connected"]
    assert approvals == 2


async def test_idle_session_is_replaced() -> None:
    async def silent(conn: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.wait_closed()

    async with serve(silent, "127.0.0.1", 0) as srv:
        ws = KisWebSocketClient(Approvals(), env=KisEnv.REAL, url=url_of(srv), reconnect=FAST, idle_timeout=0.1)
        async with ws:
            events = ws.events()
            seen: list[WsEvent] = []
            dropped = await next_matching(events, lambda ev: isinstance(ev, Disconnected), seen)
    assert isinstance(dropped, Disconnected)
    assert dropped.reason.startswith("no message")
