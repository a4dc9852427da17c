"""Fault injection through ``/sim/faults``, observed from a real client."""

from __future__ import annotations

import httpx
import pytest

from tests.kis_sim.conftest import PRICE, Kis, SimServer

QUOTE = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}


def test_unknown_and_bad_fault_keys_are_rejected(sim: SimServer) -> None:
    r = httpx.post(sim.url + "/sim/faults", json={"http_500_rate": 0.1, "explode_rate": 1})
    assert r.status_code == 400
    assert "explode_rate" in r.json()["error"]
    assert httpx.post(sim.url + "/sim/faults", json={"timeout_rate": 2}).status_code == 400
    current = sim.control("GET", "/sim/faults")
    assert current["http_500_rate"] == 0.0  # nothing applied from the rejected request
    for key in (
        "rate_limit_per_s",
        "http_500_rate",
        "egw00201_rate",
        "timeout_rate",
        "lost_response_rate",
        "ws_drop_every_s",
        "duplicate_notice_rate",
    ):
        assert key in current


async def test_http_500_and_spurious_egw00201_do_not_process(kis: Kis) -> None:
    sim = kis.server
    sim.control("POST", "/sim/faults", {"http_500_rate": 1.0})
    r = await kis.order("BUY", "005930", 1)
    assert r.status_code == 500 and r.json()["rt_cd"] == "1"
    sim.control("POST", "/sim/faults", {"http_500_rate": 0, "egw00201_rate": 1.0})
    r = await kis.order("BUY", "005930", 1)
    assert (r.status_code, r.json()["msg_cd"]) == (500, "EGW00201")
    assert sim.control("GET", "/sim/orders") == []


async def test_fault_paths_target_only_orders(kis: Kis) -> None:
    kis.server.control("POST", "/sim/faults", {"http_500_rate": 1.0, "fault_paths": ["order-cash"]})
    assert (await kis.get(PRICE, "FHKST01010100", QUOTE)).status_code == 200
    assert (await kis.order("BUY", "005930", 1)).status_code == 500


async def test_timeout_holds_the_request_and_does_nothing(kis: Kis) -> None:
    kis.server.control("POST", "/sim/faults", {"timeout_rate": 1.0})
    with pytest.raises(httpx.ReadTimeout):
        await kis.http.post(
            "/uapi/domestic-stock/v1/trading/order-cash",
            json={
                "CANO": kis.cano,
                "ACNT_PRDT_CD": "01",
                "PDNO": "005930",
                "ORD_DVSN": "01",
                "ORD_QTY": "1",
                "ORD_UNPR": "0",
            },
            headers=kis.headers("TTTC0012U"),
            timeout=0.5,
        )
    assert kis.server.control("GET", "/sim/orders") == []


async def test_lost_response_executes_the_order(kis: Kis) -> None:
    kis.server.control("POST", "/sim/faults", {"lost_response_rate": 1.0})
    with pytest.raises(httpx.ReadTimeout):
        await kis.http.post(
            "/uapi/domestic-stock/v1/trading/order-cash",
            json={
                "CANO": kis.cano,
                "ACNT_PRDT_CD": "01",
                "PDNO": "005930",
                "ORD_DVSN": "01",
                "ORD_QTY": "3",
                "ORD_UNPR": "0",
            },
            headers=kis.headers("TTTC0012U"),
            timeout=0.5,
        )
    orders = kis.server.control("GET", "/sim/orders")
    assert len(orders) == 1
    assert orders[0]["filled_qty"] == 3
    kis.server.control("POST", "/sim/faults", {"lost_response_rate": 0})
    rows = (await kis.daily_ccld()).json()["output1"]
    assert [r["odno"] for r in rows] == [orders[0]["odno"]]


async def test_exchange_reject_after_acceptance(kis: Kis) -> None:
    kis.server.control("POST", "/sim/faults", {"exchange_reject_rate": 1.0})
    r = (await kis.order("BUY", "005930", 4)).json()
    assert r["rt_cd"] == "0"
    row = (await kis.daily_ccld()).json()["output1"][0]
    assert (row["odno"], row["rjct_qty"], row["tot_ccld_qty"]) == (r["output"]["ODNO"], "4", "0")
    assert kis.server.control("GET", "/sim/orders")[0]["status"] == "REJECTED"
    assert kis.server.control("GET", "/sim/balance")["reserved_cash"] == 0


async def test_reset_restores_defaults(kis: Kis) -> None:
    sim = kis.server
    sim.control("POST", "/sim/faults", {"http_500_rate": 0.5, "ws_drop_every_s": 5})
    await kis.order("BUY", "005930", 1)
    sim.control("POST", "/sim/reset")
    faults = sim.control("GET", "/sim/faults")
    assert faults["http_500_rate"] == 0.0 and faults["ws_drop_every_s"] is None
    assert sim.control("GET", "/sim/orders") == []
    assert sim.control("GET", "/sim/fills") == []
    assert sim.control("GET", "/sim/balance")["holdings"] == {}
