"""The simulator's daily limits are KRX's, and it charges by a tiered fee schedule and reports its
totals as KIS does.

Execution holds its own fees and tax against the balance's ``thdt_tlex_amt``, so the simulator's
totals must be the sum of what it charged fill by fill, in every place it states them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date

import pytest

from stock_manager.shared.market_rules import (
    Market,
    affordable_qty,
    commission,
    parse_fee_schedule,
    price_limits,
    sell_tax,
    tick_size,
)
from tests.kis_sim.conftest import PSBL_ORDER, Kis, SimServer, make_config

# a branch account's bands: 0.4971 % below 1,000,000 won, 0.1971 % + 2,000 won above
TIERED = parse_fee_schedule('[{"below": 1000000, "rate": "0.004971"}, {"rate": "0.001971", "fixed": 2000}]')
TODAY = date(2026, 11, 23)


@pytest.fixture(scope="module")
def tiered() -> Iterator[SimServer]:
    with SimServer(make_config(env="real", commission_rate=TIERED)) as server:
        yield server


@pytest.fixture
async def kis(tiered: SimServer) -> AsyncIterator[Kis]:
    tiered.reset()
    client = Kis(tiered)
    await client.login()
    yield client
    await client.close()


async def test_fills_are_charged_by_the_schedule_and_every_total_agrees(kis: Kis) -> None:
    for side, qty in (("BUY", 30), ("SELL", 10), ("SELL", 20)):
        r = await kis.order(side, "005930", qty)
        assert r.json()["rt_cd"] == "0", r.text
    account = f"{kis.cano}-{kis.prdt}"
    orders = {o["odno"]: o for o in kis.server.control("GET", f"/sim/orders?account={account}")}
    fills = kis.server.control("GET", f"/sim/fills?account={account}")
    assert sum(f["qty"] for f in fills) == 60
    expected = 0
    for f in fills:
        amount = f["qty"] * f["price"]
        expected += int(commission(amount, TIERED))
        if orders[f["odno"]]["side"] == "SELL":
            expected += int(sell_tax(amount, Market.KOSPI, TODAY))
    values = [f["qty"] * f["price"] for f in fills]
    assert min(values) < 1_000_000 <= max(values)  # both bands are charged

    summary = (await kis.balance()).json()["output2"][0]
    assert int(summary["thdt_tlex_amt"]) == expected
    assert int(summary["bfdy_tlex_amt"]) == 0
    assert kis.server.control("GET", f"/sim/balance?account={account}")["today_fees_and_tax"] == expected
    assert int((await kis.daily_ccld()).json()["output2"]["prsm_tlex_smtl"]) == expected


async def test_buyable_quantity_pays_for_the_tiered_fee(kis: Kis) -> None:
    params = {"CANO": kis.cano, "ACNT_PRDT_CD": "01", "PDNO": "005930", "ORD_UNPR": "0", "ORD_DVSN": "01",
              "CMA_EVLU_AMT_ICLD_YN": "N", "OVRS_ICLD_YN": "N"}
    out = (await kis.get(PSBL_ORDER, "TTTC8908R", params)).json()["output"]
    cash, unit = int(out["ord_psbl_cash"]), int(out["psbl_qty_calc_unpr"])
    assert int(out["nrcvb_buy_qty"]) == affordable_qty(cash, unit, TIERED)
    assert int(out["nrcvb_buy_qty"]) * unit + commission(int(out["nrcvb_buy_qty"]) * unit, TIERED) <= cash


async def test_quoted_limits_are_krxs_and_orders_beyond_them_are_refused(kis: Kis) -> None:
    symbols = [s for s in kis.server.control("GET", "/sim/symbols")["symbols"] if not s["halted"]][:25]
    for s in symbols:
        out = await kis.price(s["symbol"])
        base, upper, lower = (int(out[k]) for k in ("stck_sdpr", "stck_mxpr", "stck_llam"))
        assert (lower, upper) == price_limits(base), s["symbol"]
    code = symbols[0]["symbol"]
    out = await kis.price(code)
    lower, upper = int(out["stck_llam"]), int(out["stck_mxpr"])
    below = await kis.order("BUY", code, 1, price=lower - tick_size(lower - 1), dvsn="00")
    assert below.json()["msg_cd"] == "APBK0508", below.text
    above = await kis.order("SELL", code, 1, price=upper + tick_size(upper), dvsn="00")
    assert above.json()["msg_cd"] == "APBK0507", above.text
    at_lower = await kis.order("BUY", code, 1, price=lower, dvsn="00")
    assert at_lower.json()["rt_cd"] == "0", at_lower.text
