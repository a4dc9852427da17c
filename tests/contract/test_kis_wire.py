"""The simulator's answers as raw bytes on the wire, where KIS clients see details HTTP libraries hide.

Header-name case, for one: httpx and the adapter ignore it, but KIS's own sample client keeps
only all-lowercase names and turns them into attributes, so the exact bytes are the contract.
These tests run against the simulator process the contract suite starts (no database needed).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.support.sim import SimProcess

PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930"


async def raw_http(port: int, request: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """Send ``request`` on a fresh socket; the response's header lines exactly as written, and its body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")[1:-2]
        headers = [(name, value.strip()) for name, value in (line.split(":", 1) for line in lines)]
        length = int(next(v for n, v in headers if n.lower() == "content-length"))
        body = await asyncio.wait_for(reader.readexactly(length), 10)
        return headers, body
    finally:
        writer.close()


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def names(headers: list[tuple[str, str]]) -> list[str]:
    return [n for n, _ in headers]


async def token(sim: SimProcess, appkey: str, appsecret: str) -> tuple[list[tuple[str, str]], str]:
    body = json.dumps({"grant_type": "client_credentials", "appkey": appkey, "appsecret": appsecret}).encode()
    request = http_request("POST", "/oauth2/tokenP", {"content-type": "application/json; charset=utf-8"}, body)
    headers, raw = await raw_http(sim.port, request)
    return headers, str(json.loads(raw)["access_token"])


async def test_standard_headers_capitalized_kis_headers_lowercase(real_sim: SimProcess) -> None:
    appkey, appsecret = "PS" + uuid.uuid4().hex[:34], uuid.uuid4().hex * 5
    headers, access = await token(real_sim, appkey, appsecret)
    assert "Content-Type" in names(headers) and "Content-Length" in names(headers), headers
    assert "Date" in names(headers), headers

    quote = http_request(
        "GET",
        PRICE,
        {
            "content-type": "application/json; charset=utf-8",
            "authorization": f"Bearer {access}",
            "appkey": appkey,
            "appsecret": appsecret,
            "tr_id": "FHKST01010100",
            "custtype": "P",
        },
    )
    headers, raw = await raw_http(real_sim.port, quote)
    assert json.loads(raw)["rt_cd"] == "0"
    present = names(headers)
    assert "Content-Type" in present and "Content-Length" in present, headers
    assert "tr_id" in present and "tr_cont" in present, headers
    assert dict(headers)["tr_id"] == "FHKST01010100"
    for name in present:
        # KIS's own headers are snake_case and lowercase; every other one is capitalized per word
        if "_" in name:
            assert name == name.lower(), name
        else:
            assert name == "-".join(part.capitalize() for part in name.split("-")), name


async def approval_key(sim: SimProcess) -> str:
    appkey, appsecret = "PS" + uuid.uuid4().hex[:34], uuid.uuid4().hex * 5
    body = json.dumps({"grant_type": "client_credentials", "appkey": appkey, "secretkey": appsecret}).encode()
    request = http_request("POST", "/oauth2/Approval", {"content-type": "application/json; charset=utf-8"}, body)
    _, raw = await raw_http(sim.port, request)
    return str(json.loads(raw)["approval_key"])


async def subscribe_acks(sim: SimProcess, subscriptions: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Each registration's ack, as the JSON text frame the server wrote."""
    approval = await approval_key(sim)
    acks = []
    async with connect(sim.ws_url + "/tryitout", ping_interval=None) as ws:
        for tr_id, tr_key in subscriptions:
            header = {"approval_key": approval, "custtype": "P", "tr_type": "1", "content-type": "utf-8"}
            await ws.send(json.dumps({"header": header, "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}}))
            while True:
                text = await asyncio.wait_for(ws.recv(), 10)
                assert isinstance(text, str)
                if text.startswith("{") and "PINGPONG" not in text:
                    acks.append(json.loads(text))
                    break
    return acks


@pytest.mark.parametrize("env", ["real", "paper"])
async def test_fill_notice_acks_say_encrypted_quote_acks_do_not(
    env: str, real_sim: SimProcess, paper_sim: SimProcess
) -> None:
    sim = real_sim if env == "real" else paper_sim
    notice_tr = "H0STCNI0" if env == "real" else "H0STCNI9"
    notice, trades, book = await subscribe_acks(
        sim, [(notice_tr, "htsuser1"), ("H0STCNT0", "005930"), ("H0STASP0", "005930")]
    )
    assert notice["header"] == {"tr_id": notice_tr, "tr_key": "htsuser1", "encrypt": "Y"}
    assert notice["body"]["msg_cd"] == "OPSP0000"
    assert len(notice["body"]["output"]["key"]) == 32 and len(notice["body"]["output"]["iv"]) == 16
    assert trades["header"]["encrypt"] == "N" and book["header"]["encrypt"] == "N"
