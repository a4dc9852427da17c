"""The simulator's payloads have the shapes of the real KIS samples (key sets, field counts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.kis_sim.conftest import (
    ASKING,
    BALANCE,
    CCLD,
    CHART,
    PRICE,
    PSBL_ORDER,
    PSBL_RVSE,
    RANK,
    Kis,
    SimServer,
)

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "kis-samples"

pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"KIS samples not found at {SAMPLES} (they live beside the repo in shared/)"
)


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return data


def keys_of(obj: Any) -> set[str]:
    assert isinstance(obj, dict), obj
    return set(obj)


def assert_covers(ours: Any, theirs: Any, where: str) -> None:
    missing = keys_of(theirs) - keys_of(ours)
    assert not missing, f"{where}: keys of the KIS sample missing from the simulator: {sorted(missing)}"


async def test_order_and_token_shapes(kis: Kis) -> None:
    order = (await kis.order("BUY", "005930", 1)).json()
    doc = sample("order_cash__doc_example.json")["response_body"]
    assert keys_of(order) == keys_of(doc)
    assert keys_of(order["output"]) == keys_of(doc["output"])
    assert all(isinstance(v, str) for v in order["output"].values())
    odno = order["output"]["ODNO"]
    out = await kis.price("005930")
    low = int(out["stck_llam"]) + 1000
    resting = (await kis.order("BUY", "005930", 1, low)).json()["output"]["ODNO"]
    modify = (await kis.revise(resting, cancel=False, price=low + 100)).json()
    assert keys_of(modify["output"]) == keys_of(
        sample("order_rvsecncl_modify__doc_example.json")["response_body"]["output"]
    )
    assert odno != modify["output"]["ODNO"]
    other = Kis(kis.server)
    r = await other.http.post(
        "/oauth2/tokenP",
        json={"grant_type": "client_credentials", "appkey": other.appkey, "appsecret": other.appsecret},
    )
    assert keys_of(r.json()) == keys_of(sample("oauth_tokenP__doc_example.json")["response_body"])
    assert isinstance(r.json()["expires_in"], int)
    approval = await other.http.post(
        "/oauth2/Approval",
        json={"grant_type": "client_credentials", "appkey": other.appkey, "secretkey": other.appsecret},
    )
    assert keys_of(approval.json()) == keys_of(sample("oauth_approval__doc_example.json")["response_body"])
    revoke = await other.http.post(
        "/oauth2/revokeP",
        json={"appkey": other.appkey, "appsecret": other.appsecret, "token": r.json()["access_token"]},
    )
    assert revoke.json() == sample("oauth_revokeP__doc_example.json")["response_body"]
    hashed = await other.http.post("/uapi/hashkey", json={"CANO": "1", "ORD_QTY": "1"})
    assert keys_of(hashed.json()) == keys_of(sample("hashkey__doc_example.json")["response_body"])
    assert len(hashed.json()["HASH"]) == 64
    again = await other.http.post(
        "/oauth2/tokenP",
        json={"grant_type": "client_credentials", "appkey": other.appkey, "appsecret": other.appsecret},
    )
    assert again.json() == sample("error_EGW00133_token_too_often__real.json")["response_body"]
    await other.close()


async def test_account_query_shapes(kis: Kis) -> None:
    await kis.order("BUY", "005930", 2)
    ccld = (await kis.daily_ccld()).json()
    doc = sample("inquire_daily_ccld__doc_example.json")["response_body"]
    assert keys_of(ccld) == keys_of(doc)
    assert_covers(ccld["output1"][0], doc["output1"][0], "daily-ccld output1")
    assert {"cnc_cfrm_qty", "cncl_cfrm_qty", "excg_id_dvsn_Cd", "stpm_cndt_pric"} <= keys_of(ccld["output1"][0])
    assert keys_of(ccld["output2"]) == keys_of(doc["output2"])
    assert len(ccld["ctx_area_nk100"]) == len(doc["ctx_area_nk100"]) == 100

    bal = (await kis.balance()).json()
    doc = sample("inquire_balance__doc_example.json")["response_body"]
    assert keys_of(bal) == keys_of(doc)
    assert_covers(bal["output1"][0], doc["output1"][0], "balance output1")
    assert keys_of(bal["output2"][0]) == keys_of(doc["output2"][0])
    real_partial = sample("paper_inquire_balance__real_partial.json")["response_body_partial"]
    assert keys_of(bal["output1"][0]) == keys_of(real_partial["output1"][0])

    psbl = await kis.get(
        PSBL_ORDER,
        "TTTC8908R",
        {
            "CANO": kis.cano,
            "ACNT_PRDT_CD": "01",
            "PDNO": "005930",
            "ORD_UNPR": "0",
            "ORD_DVSN": "01",
            "CMA_EVLU_AMT_ICLD_YN": "N",
            "OVRS_ICLD_YN": "N",
        },
    )
    doc = sample("inquire_psbl_order__doc_example.json")["response_body"]
    assert keys_of(psbl.json()) == keys_of(doc)
    assert keys_of(psbl.json()["output"]) == keys_of(doc["output"])

    out = await kis.price("005930")
    await kis.order("BUY", "005930", 1, int(out["stck_llam"]) + 1000)
    rvse = await kis.get(
        PSBL_RVSE,
        "TTTC0084R",
        {
            "CANO": kis.cano,
            "ACNT_PRDT_CD": "01",
            "CTX_AREA_FK100": "",
            "CTX_AREA_NK100": "",
            "INQR_DVSN_1": "0",
            "INQR_DVSN_2": "0",
        },
    )
    doc = sample("inquire_psbl_rvsecncl__doc_example.json")["response_body"]
    assert keys_of(rvse.json()) == keys_of(doc)
    assert_covers(rvse.json()["output"][0], doc["output"][0], "psbl-rvsecncl output")


async def test_quotation_shapes(kis: Kis) -> None:
    quote = QUOTE_PARAMS
    price = (await kis.get(PRICE, "FHKST01010100", quote)).json()
    doc = sample("inquire_price__doc_example.json")["response_body"]
    assert keys_of(price) == keys_of(doc)
    assert_covers(price["output"], doc["output"], "inquire-price output")

    book = (await kis.get(ASKING, "FHKST01010200", quote)).json()
    doc = sample("inquire_asking_price_exp_ccn__doc_example.json")["response_body"]
    assert keys_of(book) == keys_of(doc)
    assert keys_of(book["output1"]) == keys_of(doc["output1"])
    assert keys_of(book["output2"]) == keys_of(doc["output2"])

    chart = (
        await kis.get(
            CHART,
            "FHKST03010200",
            {**quote, "FID_ETC_CLS_CODE": "", "FID_INPUT_HOUR_1": "100000", "FID_PW_DATA_INCU_YN": "Y"},
        )
    ).json()
    doc = sample("inquire_time_itemchartprice__doc_example.json")["response_body"]
    assert keys_of(chart) == keys_of(doc)
    assert keys_of(chart["output1"]) == keys_of(doc["output1"])
    assert keys_of(chart["output2"][0]) == keys_of(doc["output2"][0])

    rank = (
        await kis.get(
            RANK,
            "FHPST01710000",
            {
                "FID_COND_MRKT_DIV_CODE": "J",
                "FID_COND_SCR_DIV_CODE": "20171",
                "FID_INPUT_ISCD": "0000",
                "FID_DIV_CLS_CODE": "0",
                "FID_BLNG_CLS_CODE": "0",
                "FID_TRGT_CLS_CODE": "111111111",
                "FID_TRGT_EXLS_CLS_CODE": "0000000000",
                "FID_INPUT_PRICE_1": "",
                "FID_INPUT_PRICE_2": "",
                "FID_VOL_CNT": "",
                "FID_INPUT_DATE_1": "",
            },
        )
    ).json()
    doc = sample("volume_rank__doc_example.json")["response_body"]
    assert keys_of(rank) == keys_of(doc)
    assert keys_of(rank["output"][0]) == keys_of(doc["output"][0])
    assert len(rank["output"]) <= 30


QUOTE_PARAMS = {"fid_cond_mrkt_div_code": "J", "fid_input_iscd": "000660"}  # lowercase, as KIS's own examples


async def test_error_bodies(kis: Kis, pkis: Kis) -> None:
    kis.server.control("POST", "/sim/faults", {"rate_limit_per_s": 1})
    await kis.get(PRICE, "FHKST01010100", QUOTE_PARAMS)
    limited = await kis.get(PRICE, "FHKST01010100", QUOTE_PARAMS)
    assert limited.status_code == sample("error_EGW00201_rate_limit__real.json")["meta"]["http_status"]
    assert limited.json() == sample("error_EGW00201_rate_limit__real.json")["response_body"]
    kis.server.control("POST", "/sim/faults", {"rate_limit_per_s": None})
    not_found = await pkis.get(
        PSBL_RVSE, "TTTC0084R", {"CANO": pkis.cano, "ACNT_PRDT_CD": "01", "CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
    )
    assert not_found.json() == sample("error_MCA00124_service_not_found_paper__real.json")["response_body"]
    unpaged = await kis.get(BALANCE, "TTTC8434R", {"CANO": kis.cano})
    assert unpaged.json()["msg_cd"] == "OPSQ2001"
    assert (await kis.get(CCLD, "TTTC0081R", {})).json()["msg1"].startswith("ERROR : INPUT_FIELD_NAME")


async def test_websocket_shapes(sim: SimServer) -> None:
    kis = Kis(sim)
    await kis.login()
    approval = await kis.approval()
    doc = sample("ws_H0STCNT0__doc_example.json")
    real = sample("ws_H0STCNT0__real_frames.json")["frames"]["frame_2023"]
    asp_real = sample("ws_H0STASP0__real_frames.json")["frames"]["frame_a"]
    ack_real = sample("ws_subscribe_ack__real.json")["messages"]["ack_H0STCNT0"]
    request = doc["subscribe_request"]
    request["header"]["approval_key"] = approval
    async with connect(sim.ws_url + "/tryitout/H0STCNT0", ping_interval=None) as ws:
        await ws.send(json.dumps(request))
        ack = json.loads(await ws.recv())
        assert keys_of(ack) == keys_of(ack_real)
        assert keys_of(ack["header"]) == keys_of(ack_real["header"])
        assert keys_of(ack["body"]) == keys_of(ack_real["body"])
        assert {k: len(v) for k, v in ack["body"]["output"].items()} == {
            k: len(v) for k, v in ack_real["body"]["output"].items()
        }
        request["body"]["input"]["tr_id"] = "H0STASP0"
        await ws.send(json.dumps(request))
        sim.control("POST", "/sim/clock", {"speed": 120})
        got: dict[str, str] = {}
        while len(got) < 3:
            raw = await ws.recv()
            assert isinstance(raw, str)
            if raw[0] in "01":
                got.setdefault(raw.split("|")[1], raw)
            else:
                got.setdefault("ack", raw)
    cnt = got["H0STCNT0"].split("|", 3)
    assert cnt[0] == real.split("|")[0] and cnt[1] == "H0STCNT0"
    per_record = len(real.split("|", 3)[3].split("^"))
    assert len(cnt[3].split("^")) == per_record * int(cnt[2])
    assert per_record == len(doc["data_body"].split("^")) == 46
    assert len(got["H0STASP0"].split("|", 3)[3].split("^")) == len(asp_real.split("|", 3)[3].split("^")) == 62
    await kis.close()
