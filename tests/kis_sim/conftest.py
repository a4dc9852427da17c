"""A real simulator on a free loopback port, and a small KIS client to talk to it.

The server runs in its own thread and event loop, so the tests (async or blocking, like the
third-party client) talk to it only through real sockets.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
import uvicorn

from stock_manager.services.kis_sim.app import create_app, uvicorn_config
from stock_manager.services.kis_sim.config import SimConfig
from stock_manager.shared.clock import Clock

MONDAY_10AM = "2026-11-23T10:00:00+09:00"
ORDER = "/uapi/domestic-stock/v1/trading/order-cash"
REVISE = "/uapi/domestic-stock/v1/trading/order-rvsecncl"
CCLD = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"
BALANCE = "/uapi/domestic-stock/v1/trading/inquire-balance"
PSBL_ORDER = "/uapi/domestic-stock/v1/trading/inquire-psbl-order"
PSBL_RVSE = "/uapi/domestic-stock/v1/trading/inquire-psbl-rvsecncl"
PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
ASKING = "/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn"
CHART = "/uapi/domestic-stock/v1/quotations/inquire-time-itemchartprice"
RANK = "/uapi/domestic-stock/v1/quotations/volume-rank"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimServer:
    def __init__(self, config: SimConfig, wall: Clock | None = None) -> None:
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.app = create_app(config, wall)
        self.server = uvicorn.Server(uvicorn_config(self.app, "127.0.0.1", self.port))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> SimServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("simulator did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        r = httpx.request(method, self.url + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def reset(self, clock: str = MONDAY_10AM, speed: float = 1.0) -> None:
        self.control("POST", "/sim/reset")
        self.control("POST", "/sim/clock", {"at": clock, "speed": speed})


def make_config(**overrides: Any) -> SimConfig:
    base: dict[str, Any] = {
        "clock_start": datetime.fromisoformat(MONDAY_10AM),
        "rate_limit_per_s": 0,
        "universe_size": 600,
        "pingpong_interval_s": 0.5,
        "pingpong_timeout_s": 2.0,
        "tick_interval_s": 0.05,
    }
    base.update(overrides)
    return SimConfig(**base)


@pytest.fixture(scope="session")
def real_sim() -> Iterator[SimServer]:
    with SimServer(make_config(env="real")) as sim:
        yield sim


@pytest.fixture(scope="session")
def paper_sim() -> Iterator[SimServer]:
    with SimServer(make_config(env="paper")) as sim:
        yield sim


@pytest.fixture
def sim(real_sim: SimServer) -> SimServer:
    real_sim.reset()
    return real_sim


@pytest.fixture
def psim(paper_sim: SimServer) -> SimServer:
    paper_sim.reset()
    return paper_sim


@dataclass
class Kis:
    """A minimal KIS client: exactly the wire format, nothing convenient."""

    server: SimServer
    appkey: str = field(default_factory=lambda: "PS" + uuid.uuid4().hex[:34])
    appsecret: str = field(default_factory=lambda: uuid.uuid4().hex * 5)
    cano: str = field(default_factory=lambda: f"{uuid.uuid4().int % 10**8:08d}")
    prdt: str = "01"
    token: str = ""
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=self.server.url, timeout=10)

    @property
    def paper(self) -> bool:
        return self.server.config.env == "paper"

    def tr(self, real: str) -> str:
        return "V" + real[1:] if self.paper and real[0] in "TJC" else real

    async def login(self) -> None:
        r = await self.http.post(
            "/oauth2/tokenP",
            json={"grant_type": "client_credentials", "appkey": self.appkey, "appsecret": self.appsecret},
        )
        assert r.status_code == 200, r.text
        self.token = r.json()["access_token"]

    def headers(self, tr_id: str, tr_cont: str = "") -> dict[str, str]:
        return {
            "content-type": "application/json; charset=utf-8",
            "authorization": f"Bearer {self.token}",
            "appkey": self.appkey,
            "appsecret": self.appsecret,
            "tr_id": tr_id,
            "tr_cont": tr_cont,
            "custtype": "P",
        }

    async def get(self, path: str, tr_id: str, params: dict[str, str], tr_cont: str = "") -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.headers(self.tr(tr_id), tr_cont))

    async def post(self, path: str, tr_id: str, body: dict[str, str]) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.headers(self.tr(tr_id)))

    async def order(self, side: str, code: str, qty: int, price: int = 0, dvsn: str | None = None) -> httpx.Response:
        dvsn = dvsn or ("00" if price else "01")
        body = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": self.prdt,
            "PDNO": code,
            "ORD_DVSN": dvsn,
            "ORD_QTY": str(qty),
            "ORD_UNPR": str(price),
        }
        return await self.post(ORDER, "TTTC0012U" if side == "BUY" else "TTTC0011U", body)

    async def revise(self, odno: str, cancel: bool, qty: int = 0, price: int = 0, dvsn: str = "00") -> httpx.Response:
        body = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": self.prdt,
            "KRX_FWDG_ORD_ORGNO": "",
            "ORGN_ODNO": odno,
            "ORD_DVSN": dvsn,
            "RVSE_CNCL_DVSN_CD": "02" if cancel else "01",
            "ORD_QTY": str(qty),
            "ORD_UNPR": str(price),
            "QTY_ALL_ORD_YN": "N" if qty else "Y",
        }
        return await self.post(REVISE, "TTTC0013U", body)

    async def price(self, code: str) -> dict[str, str]:
        r = await self.get(PRICE, "FHKST01010100", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code})
        assert r.status_code == 200, r.text
        out: dict[str, str] = r.json()["output"]
        return out

    async def daily_ccld(self, fk: str = "", nk: str = "", tr_cont: str = "", day: str = "20261123") -> httpx.Response:
        params = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": self.prdt,
            "INQR_STRT_DT": day,
            "INQR_END_DT": day,
            "SLL_BUY_DVSN_CD": "00",
            "INQR_DVSN": "00",
            "PDNO": "",
            "CCLD_DVSN": "00",
            "ORD_GNO_BRNO": "",
            "ODNO": "",
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
            "CTX_AREA_FK100": fk,
            "CTX_AREA_NK100": nk,
        }
        return await self.get(CCLD, "TTTC0081R", params, tr_cont)

    async def balance(self, fk: str = "", nk: str = "", tr_cont: str = "") -> httpx.Response:
        params = {
            "CANO": self.cano,
            "ACNT_PRDT_CD": self.prdt,
            "AFHR_FLPR_YN": "N",
            "OFL_YN": "",
            "INQR_DVSN": "01",
            "UNPR_DVSN": "01",
            "FUND_STTL_ICLD_YN": "N",
            "FNCG_AMT_AUTO_RDPT_YN": "N",
            "PRCS_DVSN": "00",
            "CTX_AREA_FK100": fk,
            "CTX_AREA_NK100": nk,
        }
        return await self.get(BALANCE, "TTTC8434R", params, tr_cont)

    async def approval(self) -> str:
        r = await self.http.post(
            "/oauth2/Approval",
            json={"grant_type": "client_credentials", "appkey": self.appkey, "secretkey": self.appsecret},
        )
        assert r.status_code == 200, r.text
        key: str = r.json()["approval_key"]
        return key

    async def close(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def kis(sim: SimServer) -> Any:
    client = Kis(sim)
    await client.login()
    yield client
    await client.close()


@pytest.fixture
async def pkis(psim: SimServer) -> Any:
    client = Kis(psim)
    await client.login()
    yield client
    await client.close()
