"""The KIS WebSocket of the simulator, spoken to with a real WebSocket client."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.kis_sim.conftest import Kis, SimServer


def sub_msg(approval: str, tr_id: str, tr_key: str, tr_type: str = "1") -> str:
    return json.dumps(
        {
            "header": {"approval_key": approval, "custtype": "P", "tr_type": tr_type, "content-type": "utf-8"},
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        }
    )


def decrypt(key: str, iv: str, payload: str) -> str:
    dec = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
    raw = dec.update(base64.b64decode(payload)) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(raw) + unpadder.finalize()).decode()


class Feed:
    """Reads a session, answering PINGPONG like python-kis does (text echo) unless told not to."""

    def __init__(self, ws: ClientConnection, echo: bool = True) -> None:
        self.ws = ws
        self.echo = echo
        self.pings = 0

    async def next(self, timeout: float = 3.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message")
            raw = await asyncio.wait_for(self.ws.recv(), left)
            assert isinstance(raw, str)
            if raw.startswith("{") and '"PINGPONG"' in raw:
                self.pings += 1
                if self.echo:
                    await self.ws.send(raw)
                continue
            return raw

    async def control(self, timeout: float = 3.0) -> dict[str, Any]:
        while True:
            raw = await self.next(timeout)
            if raw.startswith("{"):
                data: dict[str, Any] = json.loads(raw)
                return data

    async def frames(self, tr_id: str, seconds: float) -> list[str]:
        out: list[str] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                raw = await self.next(deadline - time.monotonic())
            except TimeoutError:
                break
            if raw.split("|", 2)[1:2] == [tr_id]:
                out.append(raw)
        return out


async def test_subscribe_ack_and_multi_record_price_frames(kis: Kis) -> None:
    approval = await kis.approval()
    async with connect(kis.server.ws_url + "/tryitout", ping_interval=None) as ws:
        feed = Feed(ws)
        await ws.send(sub_msg(approval, "H0STCNT0", "005930"))
        ack = await feed.control()
        assert ack["header"] == {"tr_id": "H0STCNT0", "tr_key": "005930", "encrypt": "N"}
        body = ack["body"]
        assert (body["rt_cd"], body["msg_cd"], body["msg1"]) == ("0", "OPSP0000", "SUBSCRIBE SUCCESS")
        assert len(body["output"]["iv"]) == 16 and len(body["output"]["key"]) == 32
        kis.server.control("POST", "/sim/clock", {"speed": 300})
        frames = await feed.frames("H0STCNT0", 2.0)
    assert frames
    counts = []
    for frame in frames:
        flag, tr_id, count, payload = frame.split("|", 3)
        assert (flag, tr_id) == ("0", "H0STCNT0")
        fields = payload.split("^")
        assert len(fields) == 46 * int(count)
        assert fields[0] == "005930"
        counts.append(int(count))
    assert max(counts) > 1


async def test_asking_price_frames_have_62_fields(kis: Kis) -> None:
    approval = await kis.approval()
    async with connect(kis.server.ws_url, ping_interval=None) as ws:
        feed = Feed(ws)
        await ws.send(sub_msg(approval, "H0STASP0", "000660"))
        assert (await feed.control())["body"]["msg_cd"] == "OPSP0000"
        frames = await feed.frames("H0STASP0", 1.5)
    assert frames
    fields = frames[0].split("|", 3)[3].split("^")
    assert len(fields) == 62
    asks, bids = [int(x) for x in fields[3:13]], [int(x) for x in fields[13:23]]
    assert asks == sorted(asks) and bids == sorted(bids, reverse=True) and asks[0] > bids[0]


async def test_registration_limit_and_control_codes(kis: Kis) -> None:
    approval = await kis.approval()
    codes = [s["symbol"] for s in kis.server.control("GET", "/sim/symbols")["symbols"]][:40]
    async with connect(kis.server.ws_url + "/tryitout/H0STCNT0", ping_interval=None) as ws:
        feed = Feed(ws)
        for code in codes:
            await ws.send(sub_msg(approval, "H0STCNT0", code))
            assert (await feed.control())["body"]["msg_cd"] == "OPSP0000"
        await ws.send(sub_msg(approval, "H0STCNI0", "HTSUSER"))
        assert (await feed.control())["body"]["msg_cd"] == "OPSP0000"  # the 41st, counting all TRs
        await ws.send(sub_msg(approval, "H0STASP0", codes[0]))
        over = await feed.control()
        assert (over["body"]["rt_cd"], over["body"]["msg_cd"], over["body"]["msg1"]) == (
            "1",
            "OPSP0008",
            "MAX SUBSCRIBE OVER",
        )
        await ws.send(sub_msg(approval, "H0STCNT0", codes[0]))
        assert (await feed.control())["body"]["msg_cd"] == "OPSP0002"
        await ws.send(sub_msg(approval, "H0STCNT0", codes[0], "2"))
        assert (await feed.control())["body"]["msg_cd"] == "OPSP0001"
        await ws.send(sub_msg(approval, "H0STCNT0", codes[0], "2"))
        assert (await feed.control())["body"]["msg_cd"] == "OPSP0003"
        await ws.send(sub_msg(approval, "H0STASP0", codes[0]))
        assert (await feed.control())["body"]["msg_cd"] == "OPSP0000"
        await ws.send(sub_msg("not-an-approval-key", "H0STCNT0", codes[1]))
        assert (await feed.control())["body"]["rt_cd"] != "0"


async def test_second_session_of_an_app_key_is_refused(kis: Kis) -> None:
    approval = await kis.approval()
    async with connect(kis.server.ws_url, ping_interval=None) as first:
        feed = Feed(first)
        await first.send(sub_msg(approval, "H0STCNT0", "005930"))
        assert (await feed.control())["body"]["msg_cd"] == "OPSP0000"
        async with connect(kis.server.ws_url, ping_interval=None) as second:
            await second.send(sub_msg(await kis.approval(), "H0STCNT0", "000660"))
            refused = json.loads(await asyncio.wait_for(second.recv(), 3))
            assert refused["body"]["msg_cd"] == "OPSP8996"
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(second.recv(), 3)
        await first.send(sub_msg(approval, "H0STCNT0", "000660"))
        assert (await feed.control())["body"]["msg_cd"] == "OPSP0000"


async def _notice_session(kis: Kis, ws: ClientConnection, tr_id: str = "H0STCNI0") -> tuple[Feed, str, str]:
    feed = Feed(ws)
    await ws.send(sub_msg(await kis.approval(), tr_id, "HTSUSER1"))
    ack = (await feed.control())["body"]
    assert ack["msg_cd"] == "OPSP0000"
    return feed, ack["output"]["key"], ack["output"]["iv"]


async def _notices(feed: Feed, key: str, iv: str, n: int, tr_id: str = "H0STCNI0") -> list[list[str]]:
    out = []
    while len(out) < n:
        raw = await feed.next()
        flag, frame_tr, count, payload = raw.split("|", 3)
        if frame_tr != tr_id:
            continue
        assert (flag, count) == ("1", "001")
        out.append(decrypt(key, iv, payload).split("^"))
    return out


async def test_encrypted_notices_for_accept_fill_and_cancel(kis: Kis) -> None:
    other = Kis(kis.server)
    await other.login()
    async with (
        connect(kis.server.ws_url + "/tryitout", ping_interval=None) as ws,
        connect(kis.server.ws_url + "/tryitout", ping_interval=None) as bystander_ws,
    ):
        feed, key, iv = await _notice_session(kis, ws)
        bystander, _, _ = await _notice_session(other, bystander_ws)
        odno = (await kis.order("BUY", "005930", 2)).json()["output"]["ODNO"]
        events = await _notices(feed, key, iv, 2)
        assert all(len(e) == 26 for e in events)
        accepted, filled = events[0], events[-1]
        assert accepted[0] == "HTSUSER1"
        assert accepted[1] == kis.cano + "01"
        assert (accepted[2], accepted[13], accepted[14], accepted[12]) == (odno, "1", "1", "0")
        assert int(accepted[9]) == 2  # an order event carries the order quantity in CNTG_QTY
        assert (filled[2], filled[13], filled[4], filled[8]) == (odno, "2", "02", "005930")
        assert int(filled[10]) > 0
        out = await kis.price("005930")
        low = int(out["stck_llam"]) + 1000
        resting = (await kis.order("BUY", "005930", 5, low)).json()["output"]["ODNO"]
        cancel = (await kis.revise(resting, cancel=True)).json()["output"]["ODNO"]
        events = await _notices(feed, key, iv, 2)
        assert (events[0][2], events[0][5], events[0][13]) == (resting, "0", "1")
        assert (events[1][2], events[1][3], events[1][5], events[1][13]) == (cancel, resting, "2", "1")
        assert int(events[1][9]) == 5
        with pytest.raises(TimeoutError):
            await bystander.next(timeout=0.5)
    await other.close()


async def test_paper_notices_use_h0stcni9(pkis: Kis) -> None:
    async with connect(pkis.server.ws_url, ping_interval=None) as ws:
        feed, key, iv = await _notice_session(pkis, ws, "H0STCNI9")
        await pkis.order("BUY", "005930", 1)
        events = await _notices(feed, key, iv, 2, "H0STCNI9")
        assert [e[13] for e in events] == ["1", "2"]


async def test_duplicate_notice_fault(kis: Kis) -> None:
    kis.server.control("POST", "/sim/faults", {"duplicate_notice_rate": 1.0})
    async with connect(kis.server.ws_url, ping_interval=None) as ws:
        feed, key, iv = await _notice_session(kis, ws)
        await kis.order("BUY", "005930", 1)
        events = await _notices(feed, key, iv, 4)
    assert events[0] == events[1] and events[2] == events[3]
    assert [e[13] for e in events] == ["1", "1", "2", "2"]


async def test_pingpong_echo_keeps_a_session_and_silence_drops_it(kis: Kis) -> None:
    approval = await kis.approval()
    async with connect(kis.server.ws_url, ping_interval=None) as ws:
        feed = Feed(ws, echo=True)
        await ws.send(sub_msg(approval, "H0STCNI0", "HTS"))
        await feed.control()
        with pytest.raises(TimeoutError):
            await feed.next(timeout=3.0)
        assert feed.pings >= 4
    quiet = Kis(kis.server)
    await quiet.login()
    async with connect(kis.server.ws_url, ping_interval=None) as ws:
        feed = Feed(ws, echo=False)
        await ws.send(sub_msg(await quiet.approval(), "H0STCNI0", "HTS"))
        await feed.control()
        with pytest.raises(ConnectionClosed):
            await feed.next(timeout=5.0)
        ping = json.loads(json.dumps({"header": {"tr_id": "PINGPONG", "datetime": "20261123100000"}}))
        assert set(ping["header"]) == {"tr_id", "datetime"}
    await quiet.close()


async def test_pong_frame_answers_pingpong_too(kis: Kis) -> None:
    approval = await kis.approval()
    async with connect(kis.server.ws_url, ping_interval=None) as ws:
        await ws.send(sub_msg(approval, "H0STCNI0", "HTS"))
        deadline = time.monotonic() + 3.0
        pings = 0
        while time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
            except TimeoutError:
                break
            if isinstance(raw, str) and "PINGPONG" in raw:
                pings += 1
                header = json.loads(raw)["header"]
                assert len(header["datetime"]) == 14
                await ws.pong(raw.encode())  # the official sample's way of answering
        assert pings >= 4


async def _read_until_closed(feed: Feed) -> None:
    while True:
        await feed.next(timeout=3.0)


async def test_ws_drop_every_s(kis: Kis) -> None:
    approval = await kis.approval()
    kis.server.control("POST", "/sim/faults", {"ws_drop_every_s": 1})
    async with connect(kis.server.ws_url, ping_interval=None) as ws:
        feed = Feed(ws)
        await ws.send(sub_msg(approval, "H0STCNT0", "005930"))
        await feed.control()
        with pytest.raises(ConnectionClosed) as closed:
            await _read_until_closed(feed)
    assert closed.value.rcvd is None  # cut without a close frame
    kis.server.control("POST", "/sim/faults", {"ws_drop_every_s": None})


async def test_session_slot_is_freed_when_a_session_ends(sim: SimServer) -> None:
    kis = Kis(sim)
    await kis.login()
    approval = await kis.approval()
    for _ in range(2):
        async with connect(sim.ws_url, ping_interval=None) as ws:
            await ws.send(sub_msg(approval, "H0STCNT0", "005930"))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 3))
            assert ack["body"]["msg_cd"] == "OPSP0000"
        await asyncio.sleep(0.1)
    await kis.close()
