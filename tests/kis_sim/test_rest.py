"""KIS REST behaviour of the simulator over real HTTP: tokens, orders, queries, paging, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from stock_manager.shared.clock import KST, ManualClock
from tests.kis_sim.conftest import ASKING, CHART, PSBL_ORDER, PSBL_RVSE, RANK, Kis, SimServer, make_config

WALL_START = datetime(2026, 12, 1, 8, 30, tzinfo=KST)


@pytest.fixture(scope="module")
def walled() -> Iterator[tuple[SimServer, ManualClock]]:
    """A simulator whose wall clock (tokens, approval keys) the test moves by hand."""
    wall = ManualClock(WALL_START)
    with SimServer(make_config(env="real"), wall) as server:
        yield server, wall


async def test_token_rules_follow_the_wall_clock_not_the_market_clock(walled: tuple[SimServer, ManualClock]) -> None:
    sim, wall = walled
    wall.set(WALL_START)
    sim.reset()  # market clock: 2026-11-23 10:00, a week before the wall clock
    kis = Kis(sim)
    body = {"grant_type": "client_credentials", "appkey": kis.appkey, "appsecret": kis.appsecret}
    first = await kis.http.post("/oauth2/tokenP", json=body)
    assert first.status_code == 200
    tok = first.json()
    assert tok["token_type"] == "Bearer"
    assert tok["expires_in"] == 86400
    # the expiry a client checks against its own clock is a real one, whatever the market clock says
    assert tok["access_token_token_expired"] == "2026-12-02 08:30:00"

    again = await kis.http.post("/oauth2/tokenP", json=body)
    assert again.status_code == 403
    assert again.json() == {
        "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
        "error_code": "EGW00133",
    }
    # moving the market clock on by hours does not lift the 1-per-minute rule ...
    sim.control("POST", "/sim/clock", {"at": "2026-11-23T16:30:00+09:00", "speed": 60})
    refused = await kis.http.post("/oauth2/tokenP", json=body)
    assert refused.status_code == 403

    # ... a wall-clock minute does, and within six hours the same token comes back
    wall.advance(61)
    same = await kis.http.post("/oauth2/tokenP", json=body)
    assert same.status_code == 200
    assert same.json()["access_token"] == tok["access_token"]
    assert same.json()["expires_in"] == 86400 - 61

    wall.advance(6 * 3600)
    fresh = await kis.http.post("/oauth2/tokenP", json=body)
    assert fresh.json()["access_token"] != tok["access_token"]
    await kis.close()


async def test_missing_bad_and_expired_tokens(walled: tuple[SimServer, ManualClock]) -> None:
    sim, wall = walled
    wall.set(WALL_START)
    sim.reset()
    kis = Kis(sim)
    await kis.login()
    params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    headers = kis.headers("FHKST01010100")
    del headers["authorization"]
    r = await kis.http.get("/uapi/domestic-stock/v1/quotations/inquire-price", params=params, headers=headers)
    assert r.status_code == 500
    assert r.json()["msg_cd"] == "EGW00121"
    good, kis.token = kis.token, "eyJnot.a.token"
    r = await kis.get("/uapi/domestic-stock/v1/quotations/inquire-price", "FHKST01010100", params)
    assert (r.status_code, r.json()["msg_cd"]) == (500, "EGW00121")
    kis.token = good
    # a market clock two days on is no reason to expire a token ...
    sim.control("POST", "/sim/clock", {"at": "2026-11-25T10:00:01+09:00"})
    r = await kis.get("/uapi/domestic-stock/v1/quotations/inquire-price", "FHKST01010100", params)
    assert r.status_code == 200, r.text
    # ... 24 wall-clock hours are
    wall.advance(86_400)
    r = await kis.get("/uapi/domestic-stock/v1/quotations/inquire-price", "FHKST01010100", params)
    assert (r.status_code, r.json()["msg_cd"]) == (500, "EGW00123")
    revoke = await kis.http.post(
        "/oauth2/revokeP", json={"appkey": kis.appkey, "appsecret": kis.appsecret, "token": "nope"}
    )
    assert revoke.json()["error_code"] == "EGW00121"
    await kis.close()


async def test_approval_keys_expire_after_24_wall_hours(walled: tuple[SimServer, ManualClock]) -> None:
    sim, wall = walled
    wall.set(WALL_START)
    sim.reset()
    kis = Kis(sim)
    key = await kis.approval()
    auth = sim.app.state.sim.auth
    assert auth.app_for_approval(key) == kis.appkey
    wall.advance(86_399)
    assert auth.app_for_approval(key) == kis.appkey
    wall.advance(1)
    assert auth.app_for_approval(key) is None
    await kis.close()


async def test_wrong_tr_id_for_the_path(kis: Kis) -> None:
    r = await kis.get("/uapi/domestic-stock/v1/quotations/inquire-price", "FHKST01010200", {})
    assert r.status_code == 500
    assert r.json()["msg_cd"] == "OPSQ0002"


async def test_quote_fields(kis: Kis) -> None:
    out = await kis.price("005930")
    price, upper, lower, base = (int(out[k]) for k in ("stck_prpr", "stck_mxpr", "stck_llam", "stck_sdpr"))
    assert lower <= price <= upper
    assert upper <= base * 1.3 < upper + int(out["aspr_unit"]) * 2
    assert int(out["acml_vol"]) > 0
    assert out["temp_stop_yn"] == "N"
    assert all(isinstance(v, str) for v in out.values())
    halted = [s for s in kis.server.control("GET", "/sim/symbols")["symbols"] if s["halted"]]
    assert halted
    hout = await kis.price(halted[0]["symbol"])
    assert (hout["temp_stop_yn"], hout["iscd_stat_cls_code"]) == ("Y", "58")


async def test_order_fill_daily_ccld_and_balance(kis: Kis) -> None:
    r = await kis.order("BUY", "005930", 10)
    assert r.status_code == 200
    body = r.json()
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "APBK0013")
    out = body["output"]
    assert set(out) == {"KRX_FWDG_ORD_ORGNO", "ODNO", "ORD_TMD"}
    assert len(out["ODNO"]) == 10 and out["ODNO"].isdigit()
    assert out["ORD_TMD"].startswith("1000")

    orders = kis.server.control("GET", "/sim/orders")
    assert orders[-1]["odno"] == out["ODNO"]
    assert orders[-1]["status"] == "FILLED"
    fills = kis.server.control("GET", "/sim/fills")
    assert sum(f["qty"] for f in fills if f["odno"] == out["ODNO"]) == 10

    r = await kis.daily_ccld()
    assert r.headers["tr_cont"] in ("D", "E")
    data = r.json()
    row = data["output1"][0]
    assert row["odno"] == out["ODNO"]
    assert row["tot_ccld_qty"] == "10"
    assert row["rmn_qty"] == "0"
    assert row["cnc_cfrm_qty"] == row["cncl_cfrm_qty"] == "0"
    assert int(row["avg_prvs"]) > 0
    assert data["output2"]["tot_ccld_qty"] == "10"
    assert len(data["ctx_area_fk100"]) == 100

    r = await kis.balance()
    bal = r.json()
    assert isinstance(bal["output2"], list) and len(bal["output2"]) == 1
    holding = bal["output1"][0]
    assert (holding["pdno"], holding["hldg_qty"], holding["ord_psbl_qty"]) == ("005930", "10", "10")
    summary = bal["output2"][0]
    assert int(summary["prvs_rcdl_excc_amt"]) < 100_000_000 == int(summary["dnca_tot_amt"])
    control = kis.server.control("GET", f"/sim/balance?account={kis.cano}-01")
    assert control["holdings"]["005930"]["qty"] == 10
    assert control["cash"] == int(summary["prvs_rcdl_excc_amt"])

    sell = await kis.order("SELL", "005930", 4)
    assert sell.json()["rt_cd"] == "0"
    too_many = await kis.order("SELL", "005930", 7)
    assert too_many.json()["rt_cd"] != "0"


async def test_market_buy_reserves_at_upper_limit(kis: Kis) -> None:
    out = await kis.price("005930")
    qty = 100_000_000 // int(out["stck_prpr"])
    r = await kis.order("BUY", "005930", qty)
    assert r.status_code == 200
    assert r.json() == {"rt_cd": "7", "msg_cd": "APBK0952", "msg1": "주문가능금액을 초과 했습니다"}
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
    output = psbl.json()["output"]
    assert output["psbl_qty_calc_unpr"] == out["stck_mxpr"]
    ok = await kis.order("BUY", "005930", int(output["nrcvb_buy_qty"]))
    assert ok.json()["rt_cd"] == "0"


async def test_off_tick_and_bad_quantity_are_rejected(kis: Kis) -> None:
    out = await kis.price("005930")
    r = await kis.order("BUY", "005930", 1, int(out["stck_prpr"]) + 1)
    assert r.status_code == 200
    assert r.json()["rt_cd"] != "0"
    assert r.json()["msg1"] == "주식주문호가단위 오류입니다."
    r = await kis.order("BUY", "005930", 0, int(out["stck_prpr"]))
    assert r.json()["msg1"] == "주문수량을 확인 하여 주십시요."
    missing = await kis.post(
        "/uapi/domestic-stock/v1/trading/order-cash", "TTTC0012U", {"CANO": kis.cano, "ACNT_PRDT_CD": "01"}
    )
    assert missing.json()["msg_cd"] == "OPSQ2001"


async def test_cancel_and_modify_linkage(kis: Kis) -> None:
    out = await kis.price("005930")
    low = int(out["stck_llam"]) + 1000
    placed = (await kis.order("BUY", "005930", 10, low)).json()["output"]["ODNO"]
    modified = (await kis.revise(placed, cancel=False, qty=6, price=low + 100)).json()
    assert modified["rt_cd"] == "0"
    new_odno = modified["output"]["ODNO"]
    assert new_odno != placed
    cancelled = (await kis.revise(new_odno, cancel=True)).json()
    assert cancelled["rt_cd"] == "0"
    cancel_odno = cancelled["output"]["ODNO"]
    rows = {r["odno"]: r for r in (await kis.daily_ccld()).json()["output1"]}
    assert rows[new_odno]["orgn_odno"] == placed
    assert rows[cancel_odno]["orgn_odno"] == new_odno
    assert rows[placed]["rmn_qty"] == "4"  # 6 of 10 moved to the modify order
    assert rows[new_odno]["cncl_cfrm_qty"] == "6"
    assert rows[new_odno]["rmn_qty"] == "0"
    psbl = await kis.get(
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
    assert [(r["odno"], r["psbl_qty"]) for r in psbl.json()["output"]] == [(placed, "4")]
    again = (await kis.revise(new_odno, cancel=True)).json()
    assert again["rt_cd"] != "0"
    orders = {o["odno"]: o for o in kis.server.control("GET", "/sim/orders")}
    assert orders[cancel_odno]["kind"] == "CANCEL"
    assert orders[placed]["children"] == [new_odno]


async def test_cancel_of_filled_order_fails(kis: Kis) -> None:
    odno = (await kis.order("BUY", "005930", 1)).json()["output"]["ODNO"]
    r = await kis.revise(odno, cancel=True)
    assert r.status_code == 200
    body = r.json()
    assert body["rt_cd"] != "0"
    assert "수량" in body["msg1"]


async def test_paper_paging_15_rows(pkis: Kis) -> None:
    out = await pkis.price("005930")
    low = int(out["stck_llam"]) + 1000
    placed = []
    for _ in range(18):
        r = await pkis.order("BUY", "005930", 1, low)
        body = r.json()
        assert (body["msg_cd"], body["output"]["KRX_FWDG_ORD_ORGNO"]) == ("40600000", "00950")
        placed.append(body["output"]["ODNO"])
    first = await pkis.daily_ccld()
    assert first.headers["tr_cont"] in ("F", "M")
    page1 = first.json()
    assert len(page1["output1"]) == 15
    assert page1["ctx_area_nk100"].strip()
    second = await pkis.daily_ccld(page1["ctx_area_fk100"], page1["ctx_area_nk100"], tr_cont="N")
    assert second.headers["tr_cont"] in ("D", "E")
    page2 = second.json()
    assert len(page2["output1"]) == 3
    seen = [r["odno"] for r in page1["output1"] + page2["output1"]]
    assert seen == list(reversed(placed))
    assert not page2["ctx_area_nk100"].strip()


async def test_paper_rules(pkis: Kis) -> None:
    before = pkis.server.control("GET", "/sim/stats")
    r = await pkis.order("BUY", "005930", 1, 0, dvsn="11")
    assert r.json()["msg_cd"] == "40310000"
    rvse = await pkis.get(
        PSBL_RVSE,
        "TTTC0084R",
        {"CANO": pkis.cano, "ACNT_PRDT_CD": "01", "CTX_AREA_FK100": "", "CTX_AREA_NK100": ""},
    )
    assert rvse.json()["msg_cd"] == "MCA00124"
    rank = await pkis.get(RANK, "FHPST01710000", {})
    assert rank.json()["msg_cd"] == "MCA00124"
    # /sim/stats counts what the gateway saw: the TR ids as sent, and the real-only refusals
    after = pkis.server.control("GET", "/sim/stats")
    assert after["service_not_found"] - before["service_not_found"] == 2
    sent = {tr: n - before["tr_ids"].get(tr, 0) for tr, n in after["tr_ids"].items()}
    assert {tr: n for tr, n in sent.items() if n} == {"VTTC0012U": 1, "VTTC0084R": 1, "FHPST01710000": 1}
    pkis.server.control("POST", "/sim/clock", {"at": "2026-11-23T07:00:00+09:00"})
    early = await pkis.order("BUY", "005930", 1)
    assert early.json() == {"rt_cd": "1", "msg_cd": "40570000", "msg1": "모의투자 장시작전 입니다."}
    pkis.server.control("POST", "/sim/clock", {"at": "2026-11-23T16:00:00+09:00"})
    late = await pkis.order("BUY", "005930", 1)
    assert late.json()["msg_cd"] == "40580000"


async def test_rate_limit_and_switch_off(kis: Kis) -> None:
    kis.server.control("POST", "/sim/faults", {"rate_limit_per_s": 20})
    params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    results = await asyncio.gather(
        *(kis.get("/uapi/domestic-stock/v1/quotations/inquire-price", "FHKST01010100", params) for _ in range(30))
    )
    limited = [r for r in results if r.status_code == 500]
    assert 5 <= len(limited) <= 10
    assert limited[0].json() == {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당 거래건수를 초과하였습니다."}
    await asyncio.sleep(1.05)
    kis.server.control("POST", "/sim/faults", {"rate_limit_per_s": 0})
    results = await asyncio.gather(
        *(kis.get("/uapi/domestic-stock/v1/quotations/inquire-price", "FHKST01010100", params) for _ in range(40))
    )
    assert all(r.status_code == 200 for r in results)
    assert kis.server.control("GET", "/sim/faults")["rate_limit_per_s"] is None


async def test_account_belongs_to_first_app_key(kis: Kis) -> None:
    assert (await kis.order("BUY", "005930", 1)).json()["rt_cd"] == "0"
    other = Kis(kis.server, cano=kis.cano)
    await other.login()
    r = await other.order("BUY", "005930", 1)
    assert r.status_code == 500
    assert r.json()["msg_cd"] == "OPSQ2000"
    await other.close()


async def test_quotations_chart_book_and_rank(kis: Kis) -> None:
    chart = await kis.get(
        CHART,
        "FHKST03010200",
        {
            "FID_ETC_CLS_CODE": "",
            "FID_COND_MRKT_DIV_CODE": "J",
            "FID_INPUT_ISCD": "005930",
            "FID_INPUT_HOUR_1": "095500",
            "FID_PW_DATA_INCU_YN": "Y",
        },
    )
    bars = chart.json()["output2"]
    assert 0 < len(bars) <= 30
    hours = [b["stck_cntg_hour"] for b in bars]
    assert hours == sorted(hours, reverse=True)
    assert hours[0] <= "095500"
    book = (await kis.get(ASKING, "FHKST01010200", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"})).json()
    ask1, bid1 = int(book["output1"]["askp1"]), int(book["output1"]["bidp1"])
    assert ask1 > bid1 > 0
    rank = await kis.get(
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
    rows = rank.json()["output"]
    assert len(rows) == 30
    vols = [int(r["acml_vol"]) for r in rows]
    assert vols == sorted(vols, reverse=True)


async def test_clock_set_and_speed(sim: SimServer) -> None:
    now = sim.control("POST", "/sim/clock", {"at": "2026-11-23T09:30:00+09:00", "speed": 60})
    assert now["now"].startswith("2026-11-23T09:30")
    assert now["speed"] == 60
    assert now["phase"] == "CONTINUOUS"
    await asyncio.sleep(1.0)
    later = sim.control("GET", "/sim/clock")
    assert "2026-11-23T09:30:55" <= later["now"][:19] <= "2026-11-23T09:31:30"
    speed_only = sim.control("POST", "/sim/clock", {"speed": 1})
    assert speed_only["speed"] == 1
    r = httpx.post(sim.url + "/sim/clock", json={"at": "yesterday"})
    assert r.status_code == 400


async def test_closing_auction_uncross(kis: Kis) -> None:
    sim = kis.server
    sim.control("POST", "/sim/clock", {"at": "2026-11-23T15:21:00+09:00"})
    out = await kis.price("005930")
    upper = int(out["stck_mxpr"])
    first = (await kis.order("BUY", "005930", 5, upper - 1000)).json()["output"]["ODNO"]
    second = (await kis.order("BUY", "005930", 3)).json()
    assert second["rt_cd"] == "0"
    best = await kis.order("BUY", "005930", 1, dvsn="03")
    assert best.json()["rt_cd"] != "0"  # 최유리 is not allowed in the closing call
    orders = {o["odno"]: o for o in sim.control("GET", "/sim/orders")}
    assert orders[first]["filled_qty"] == 0
    # the uncross comes at a random moment up to 30 s after 15:30 (tests/kis_sim/test_close.py)
    sim.control("POST", "/sim/clock", {"at": "2026-11-23T15:30:31+09:00"})
    await asyncio.sleep(0.3)  # the market tick uncrosses symbols with open orders
    fills = [f for f in sim.control("GET", "/sim/fills") if f["odno"] in (first, second["output"]["ODNO"])]
    assert sum(f["qty"] for f in fills) == 8
    assert len({f["price"] for f in fills}) == 1
    assert all("2026-11-23T15:30:00" <= f["ts"][:19] <= "2026-11-23T15:30:30" for f in fills)
    late = await kis.order("BUY", "005930", 1)
    assert late.json()["msg1"] == "장종료 입니다."


async def test_resting_limit_order_fills_when_market_crosses(kis: Kis) -> None:
    sim = kis.server
    book = await kis.get(ASKING, "FHKST01010200", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"})
    bid = int(book.json()["output1"]["bidp1"])
    odno = (await kis.order("BUY", "005930", 3, bid)).json()["output"]["ODNO"]
    sim.control("POST", "/sim/clock", {"speed": 60})
    for _ in range(80):
        await asyncio.sleep(0.1)
        orders = {o["odno"]: o for o in sim.control("GET", "/sim/orders")}
        if orders[odno]["filled_qty"] == 3:
            break
    assert orders[odno]["status"] == "FILLED"
    fills = [f for f in sim.control("GET", "/sim/fills") if f["odno"] == odno]
    assert all(f["price"] == bid for f in fills)


async def test_thin_book_partial_fill_then_refill(kis: Kis) -> None:
    sim = kis.server
    symbols = sim.control("GET", "/sim/symbols")["symbols"]
    thin = next(s for s in symbols if s["tier"] == 3 and not s["halted"] and 20_000 < s["base_price"] < 200_000)
    book = (
        await kis.get(ASKING, "FHKST01010200", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": thin["symbol"]})
    ).json()
    shown = sum(int(book["output1"][f"askp_rsqn{i}"]) for i in range(1, 11))
    r = await kis.order("BUY", thin["symbol"], shown + 50)
    odno = r.json()["output"]["ODNO"]
    # what the order took on arrival: the book it was shown, not more.  The rest waits for liquidity,
    # which comes back as taken levels refill and as the order's own impact moves the quote up
    fills = [f for f in sim.control("GET", "/sim/fills") if f["odno"] == odno]
    arrival = [f for f in fills if f["ts"] == fills[0]["ts"]]
    first = sum(f["qty"] for f in arrival)
    assert 0 < first < shown + 50
    assert max(f["price"] for f in arrival) <= int(book["output1"]["askp10"])
    sim.control("POST", "/sim/clock", {"speed": 600})
    for _ in range(40):
        await asyncio.sleep(0.1)
        order = next(o for o in sim.control("GET", "/sim/orders") if o["odno"] == odno)
        if order["filled_qty"] > first:
            break
    assert order["filled_qty"] > first


async def test_next_trade_date_restarts_numbering_and_expires_orders(kis: Kis) -> None:
    sim = kis.server
    out = await kis.price("005930")
    resting = (await kis.order("BUY", "005930", 1, int(out["stck_llam"]))).json()["output"]["ODNO"]
    await kis.order("BUY", "005930", 1)
    sim.control("POST", "/sim/clock", {"at": "2026-11-24T09:10:00+09:00"})
    await asyncio.sleep(0.2)
    orders = {o["odno"]: o for o in sim.control("GET", "/sim/orders")}
    assert orders[resting]["status"] == "EXPIRED"
    assert sim.control("GET", "/sim/balance")["reserved_cash"] == 0
    nxt = (await kis.order("BUY", "005930", 1)).json()["output"]["ODNO"]
    assert nxt == "0000000001"
    bal = (await kis.balance()).json()
    row = bal["output1"][0]
    assert (row["bfdy_buy_qty"], row["thdt_buyqty"], row["hldg_qty"]) == ("1", "1", "2")
    assert int(bal["output2"][0]["nxdy_excc_amt"]) < 100_000_000
