"""The simulator's answers as raw bytes on the wire, where KIS clients see details HTTP libraries hide.

Header-name case, for one: httpx and the adapter ignore it, but KIS's own sample client keeps
only all-lowercase names and turns them into attributes, so the exact bytes are the contract.
These tests run against the simulator process the contract suite starts (no database needed).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.support.sim import MONDAY_10AM, SimProcess

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "kis-samples"

PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930"
ASKING = "/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD="


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


def real_records(name: str) -> list[list[str]]:
    """The caret records of the real frames captured from KIS (kis-samples beside the repo)."""
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"KIS samples not found at {SAMPLES} (they live beside the repo in shared/)")
    frames = json.loads(path.read_text(encoding="utf-8"))["frames"]
    return [frame.split("|", 3)[3].split("^") for frame in frames.values()]


async def stream(sim: SimProcess, tr_id: str, code: str, records: int, n_fields: int) -> list[list[str]]:
    """At least ``records`` records of ``tr_id`` for ``code``, split from the raw data frames."""
    sim.http.post("/sim/reset").raise_for_status()
    sim.clock(MONDAY_10AM, speed=120)
    approval = await approval_key(sim)
    out: list[list[str]] = []
    async with connect(sim.ws_url + "/tryitout", ping_interval=None) as ws:
        header = {"approval_key": approval, "custtype": "P", "tr_type": "1", "content-type": "utf-8"}
        await ws.send(json.dumps({"header": header, "body": {"input": {"tr_id": tr_id, "tr_key": code}}}))
        while len(out) < records:
            text = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(text, str)
            if text.startswith("{"):
                if "PINGPONG" in text:
                    await ws.send(text)
                continue
            flag, tr, count, payload = text.split("|", 3)
            assert (flag, tr) == ("0", tr_id)
            fields = payload.split("^")
            assert len(fields) == int(count) * n_fields, (count, len(fields))
            out += [fields[i : i + n_fields] for i in range(0, len(fields), n_fields)]
    sim.clock(None, speed=1)
    return out


# The shape each field takes on KIS's frames; a field's pattern is checked against the real frames too.
INT = r"-?\d+"
UINT = r"\d+"
DEC2 = r"-?\d+\.\d{2}"
HHMMSS = r"(0[89]|1[0-8])[0-5]\d[0-5]\d"
SIGN = r"[1-5]"
CNT_SHAPES = {
    0: r"\d{6}", 1: HHMMSS, 2: UINT, 3: SIGN, 4: INT, 5: DEC2, 6: DEC2, 7: UINT, 8: UINT, 9: UINT,
    10: UINT, 11: UINT, 12: UINT, 13: UINT, 14: UINT, 15: UINT, 16: UINT, 17: INT, 18: DEC2, 19: UINT,
    20: UINT, 21: "[135]", 22: r"[01]\.\d{2}", 23: DEC2, 24: HHMMSS, 25: SIGN, 26: INT, 27: HHMMSS,
    28: SIGN, 29: INT, 30: HHMMSS, 31: SIGN, 32: INT, 33: r"20\d{6}", 34: r"[1-4]\d", 35: "[YN]",
    36: UINT, 37: UINT, 38: UINT, 39: UINT, 40: DEC2, 41: UINT, 42: DEC2, 43: "0", 44: "", 45: UINT,
}  # fmt: skip


def check_cnt_record(r: list[str]) -> None:
    """Every field's shape, and the relations between fields that hold on KIS's frames."""
    assert len(r) == 46
    for i, shape in CNT_SHAPES.items():
        assert re.fullmatch(shape, r[i]), (i, r[i], r)
    price, open_, high, low = int(r[2]), int(r[7]), int(r[8]), int(r[9])
    assert low <= price <= high and low <= open_ <= high
    assert r[45] == r[7], "VI_STND_PRC is the day's open"
    assert int(r[17]) == int(r[16]) - int(r[15])
    assert int(r[26]) == price - open_ and int(r[29]) == price - high and int(r[32]) == price - low
    assert r[24] <= r[27] and r[24] <= r[30] and r[24] <= r[1], "nothing happens before the open"
    buys, sells, volume = int(r[20]), int(r[19]), int(r[13])
    assert buys + sells <= volume
    assert math.isclose(float(r[22]), math.ceil(buys / volume * 100 - 1e-9) / 100), "SHNU_RATE"
    assert 0 < float(r[22]) < 1
    assert math.isclose(float(r[18]), round(buys / sells * 100, 2), abs_tol=0.006), "CTTR"


def test_the_field_checks_hold_for_the_real_frames() -> None:
    for record in real_records("ws_H0STCNT0__real_frames.json"):
        check_cnt_record(record)


async def test_trade_frames_match_kis_field_by_field(real_sim: SimProcess) -> None:
    real_records("ws_H0STCNT0__real_frames.json")  # skips without the samples
    for record in await stream(real_sim, "H0STCNT0", "005930", 20, 46):
        check_cnt_record(record)


async def test_book_frames_carry_the_change_in_resting_quantity(real_sim: SimProcess) -> None:
    records = await stream(real_sim, "H0STASP0", "005930", 8, 62)
    for before, after in itertools.pairwise(records):
        # 43/44 TOTAL_ASKP/BIDP_RSQN, 54/55 their change since the previous frame
        assert int(after[54]) == int(after[43]) - int(before[43]), (before[43], after[43], after[54])
        assert int(after[55]) == int(after[44]) - int(before[44]), (before[44], after[44], after[55])
    assert any(r[54] != "0" or r[55] != "0" for r in records[1:])
    for real in real_records("ws_H0STASP0__real_frames.json"):
        assert all(re.fullmatch(INT, real[i]) for i in (54, 55)) and (real[54], real[55]) != ("0", "0")


async def test_asking_price_answers_carry_the_change_since_the_previous_answer(real_sim: SimProcess) -> None:
    real_sim.http.post("/sim/reset").raise_for_status()
    real_sim.clock(MONDAY_10AM, speed=1)
    appkey, appsecret = "PS" + uuid.uuid4().hex[:34], uuid.uuid4().hex * 5
    _, access = await token(real_sim, appkey, appsecret)
    headers = {
        "content-type": "application/json; charset=utf-8",
        "authorization": f"Bearer {access}",
        "appkey": appkey,
        "appsecret": appsecret,
        "tr_id": "FHKST01010200",
        "custtype": "P",
    }

    async def book() -> dict[str, str]:
        _, raw = await raw_http(real_sim.port, http_request("GET", ASKING + "000660", headers))
        out: dict[str, str] = json.loads(raw)["output1"]
        return out

    answers = [await book()]
    for _ in range(4):
        real_sim.clock(None, speed=600)
        await asyncio.sleep(0.3)
        real_sim.clock(None, speed=1)
        answers.append(await book())
    moved = False
    for before, after in itertools.pairwise(answers):
        for side in ("askp", "bidp"):
            shown = {before[f"{side}{i}"]: int(before[f"{side}_rsqn{i}"]) for i in range(1, 11)}
            for i in range(1, 11):
                price, qty = after[f"{side}{i}"], int(after[f"{side}_rsqn{i}"])
                change = int(after[f"{side}_rsqn_icdc{i}"])
                assert change == qty - shown.get(price, 0), (side, i, price, qty, change)
                moved = moved or change != 0
            total = int(after[f"total_{side}_rsqn"]) - int(before[f"total_{side}_rsqn"])
            assert int(after[f"total_{side}_rsqn_icdc"]) == total
    assert moved, "the book never changed between answers"
