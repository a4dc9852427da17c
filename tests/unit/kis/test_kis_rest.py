"""KisRestClient against a scripted KIS (httpx.MockTransport): tokens, retries, orders, paging."""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from stock_manager.shared.kis import endpoints as ep
from stock_manager.shared.kis import errors as e
from stock_manager.shared.kis.endpoints import KisEnv
from stock_manager.shared.kis.models import CcldDvsn, Side
from stock_manager.shared.kis.ports import Priority
from stock_manager.shared.kis.rest import KisCredentials

from .conftest import ACCOUNT, APP_KEY, APP_SECRET, Harness, kis_error, load_sample, ok

PRICE = ep.INQUIRE_PRICE_PATH
ORDER = ep.ORDER_CASH_PATH


def query(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] if v else "" for k, v in parse_qs(request.url.query.decode(), keep_blank_values=True).items()}


# --- tokens -------------------------------------------------------------------------------------------


async def test_token_is_issued_once_and_reused(harness: Harness) -> None:
    async with harness.client() as kis:
        await kis.inquire_price("000660")
        await kis.inquire_price("005930")
    assert len(harness.kis.calls(ep.TOKEN_PATH)) == 1
    token_body = json.loads(harness.kis.calls(ep.TOKEN_PATH)[0].content)
    assert token_body == {"grant_type": "client_credentials", "appkey": APP_KEY, "appsecret": APP_SECRET}
    for request in harness.kis.calls(PRICE):
        assert request.headers["authorization"] == "Bearer token-SECRET-1"
        assert request.headers["appkey"] == APP_KEY
        assert request.headers["tr_id"] == "FHKST01010100"
        assert request.headers["custtype"] == "P"
    assert harness.store.attempts  # the attempt was recorded for other processes


async def test_token_from_the_shared_store_is_used_without_issuing(harness: Harness) -> None:
    first = harness.client()
    await first.inquire_price("000660")
    # A second process (another client on the same store) must not ask KIS again.
    async with harness.client() as second:
        await second.inquire_price("000660")
    await first.aclose()
    assert len(harness.kis.calls(ep.TOKEN_PATH)) == 1
    assert harness.kis.calls(PRICE)[1].headers["authorization"] == "Bearer token-SECRET-1"


async def test_token_refreshed_inside_the_margin(harness: Harness) -> None:
    async with harness.client(token_refresh_margin=timedelta(minutes=30)) as kis:
        await kis.inquire_price("000660")
        harness.clock.advance(timedelta(days=1, minutes=-29).total_seconds())
        await kis.inquire_price("000660")
    assert len(harness.kis.calls(ep.TOKEN_PATH)) == 2
    assert harness.kis.calls(PRICE)[1].headers["authorization"] == "Bearer token-SECRET-2"


async def test_rejected_token_is_replaced_respecting_one_per_minute(harness: Harness) -> None:
    async with harness.client() as kis:
        await kis.inquire_price("000660")
        harness.clock.advance(10)
        harness.kis.script(PRICE, kis_error("EGW00123", "기간이 만료된 token 입니다.", status=500))
        quote = await kis.inquire_price("000660")
    assert quote.price == 128500
    times = harness.kis.token_times
    assert len(times) == 2
    assert (times[1] - times[0]).total_seconds() >= 60  # waited on the clock, did not hammer
    assert [r.headers["authorization"] for r in harness.kis.calls(PRICE)] == [
        "Bearer token-SECRET-1",
        "Bearer token-SECRET-1",
        "Bearer token-SECRET-2",
    ]


async def test_token_wait_longer_than_allowed_raises_instead(harness: Harness) -> None:
    async with harness.client(max_token_wait=0) as kis:
        await kis.inquire_price("000660")
        harness.kis.script(PRICE, kis_error("EGW00121", status=500))
        with pytest.raises(e.TokenIssueTooOften) as info:
            await kis.inquire_price("000660")
    assert info.value.retry_after is not None
    assert info.value.retry_after > 0
    assert len(harness.kis.calls(ep.TOKEN_PATH)) == 1


async def test_token_rejected_twice_is_not_retried_again(harness: Harness) -> None:
    async with harness.client() as kis:
        harness.kis.script(PRICE, kis_error("EGW00123", status=500), kis_error("EGW00123", status=500))
        with pytest.raises(e.TokenExpired):
            await kis.inquire_price("000660")
    assert len(harness.kis.calls(PRICE)) == 2
    assert len(harness.kis.calls(ep.TOKEN_PATH)) == 2


async def test_egw00133_is_respected_not_hammered(harness: Harness) -> None:
    too_often = httpx.Response(
        403, json={"error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)", "error_code": "EGW00133"}
    )
    harness.kis.script(ep.TOKEN_PATH, too_often)
    async with harness.client(max_token_wait=0) as kis:
        with pytest.raises(e.TokenIssueTooOften):
            await kis.inquire_price("000660")
        with pytest.raises(e.TokenIssueTooOften):
            await kis.inquire_price("000660")  # within the minute: not even asked
        harness.clock.advance(61)
        await kis.inquire_price("000660")
    assert len(harness.kis.calls(ep.TOKEN_PATH)) == 2
    assert len(harness.kis.calls(PRICE)) == 1


async def test_valid_token_inside_margin_is_used_rather_than_waiting(harness: Harness) -> None:
    async with harness.client(max_token_wait=0) as kis:
        await kis.inquire_price("000660")
        harness.clock.advance(timedelta(days=1, minutes=-20).total_seconds())
        async with harness.store.issue_guard(kis.key_id) as guard:
            await guard.record_attempt(harness.clock.now())  # "another process just tried"
        await kis.inquire_price("000660")
    assert len(harness.kis.calls(ep.TOKEN_PATH)) == 1


# --- query retries ------------------------------------------------------------------------------------


async def test_rate_limit_is_retried_on_500_and_200(harness: Harness) -> None:
    harness.kis.script(PRICE, kis_error("EGW00201", status=500), kis_error("EGW00201", status=200))
    async with harness.client() as kis:
        quote = await kis.inquire_price("000660")
    assert quote.symbol == "000660"
    assert len(harness.kis.calls(PRICE)) == 3
    assert harness.sleeps == [1.0, 2.0]


async def test_server_errors_are_retried_then_raised(harness: Harness) -> None:
    harness.kis.script(PRICE, *[httpx.Response(500, text="oops")] * 4)
    async with harness.client() as kis:
        with pytest.raises(e.ServerError):
            await kis.inquire_price("000660")
    assert len(harness.kis.calls(PRICE)) == 4
    assert harness.sleeps == [2.0, 4.0, 8.0]


async def test_timeouts_are_retried_for_queries(harness: Harness) -> None:
    harness.kis.script(PRICE, httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"))
    async with harness.client() as kis:
        await kis.inquire_price("000660")
    assert len(harness.kis.calls(PRICE)) == 3
    assert harness.sleeps == [5.0, 5.0]


async def test_transport_error_after_budget(harness: Harness) -> None:
    harness.kis.script(PRICE, *[httpx.ConnectError("refused")] * 3)
    async with harness.client() as kis:
        with pytest.raises(e.TransportError) as info:
            await kis.inquire_price("000660")
    assert info.value.sent is False
    assert len(harness.kis.calls(PRICE)) == 3


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (kis_error("OPSQ2001", "ERROR : INPUT_FIELD_NAME X     "), e.BusinessRejected),
        (kis_error("MCA00124", "해당 서비스를 찾을수 없습니다."), e.ServiceNotFound),
        (httpx.Response(400, json={"msg1": "bad"}), e.ClientError),
        (kis_error("EGW02004", status=500), e.AuthRejected),
    ],
)
async def test_definite_errors_are_not_retried(
    harness: Harness, response: httpx.Response, error: type[e.KisError]
) -> None:
    harness.kis.script(PRICE, response)
    async with harness.client() as kis:
        with pytest.raises(error) as info:
            await kis.inquire_price("000660")
    assert len(harness.kis.calls(PRICE)) == 1
    assert harness.sleeps == []
    assert info.value.tr_id == "FHKST01010100"
    assert info.value.path == PRICE
    if error is e.BusinessRejected:
        assert info.value.msg1 == "ERROR : INPUT_FIELD_NAME X"
        assert info.value.raw is not None


async def test_unreadable_success_is_malformed_for_queries(harness: Harness) -> None:
    harness.kis.script(PRICE, ok({"rt_cd": "0", "output": {"stck_prpr": "abc"}}))
    async with harness.client() as kis:
        with pytest.raises(e.MalformedResponse):
            await kis.inquire_price("000660")


# --- orders -------------------------------------------------------------------------------------------


async def test_order_body_headers_and_ack(harness: Harness) -> None:
    async with harness.client() as kis:
        ack = await kis.order_cash(Side.BUY, "005930", 3, "00", 70000)
    (request,) = harness.kis.calls(ORDER)
    assert request.headers["tr_id"] == "TTTC0012U"
    assert json.loads(request.content) == {
        "CANO": "87654321",
        "ACNT_PRDT_CD": "01",
        "PDNO": "005930",
        "ORD_DVSN": "00",
        "ORD_QTY": "3",
        "ORD_UNPR": "70000",
    }
    assert (ack.odno, ack.org_no) == ("6555", "06590")
    assert harness.limiter.priorities[-1] is Priority.ORDER


async def test_paper_and_legacy_tr_ids(harness: Harness) -> None:
    async with harness.client(KisEnv.PAPER) as kis:
        await kis.order_cash(Side.SELL, "005930", 1, "01")
    async with harness.client(KisEnv.PAPER, legacy_tr_ids=True) as kis:
        await kis.order_cash(Side.BUY, "005930", 1, "01", 12345)
    assert [r.headers["tr_id"] for r in harness.kis.calls(ORDER)] == ["VTTC0011U", "VTTC0802U"]
    # Market orders carry no price.
    assert json.loads(harness.kis.calls(ORDER)[1].content)["ORD_UNPR"] == "0"


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("no answer"),
        httpx.WriteTimeout("half sent"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
        httpx.Response(500, text="Internal Server Error"),
        httpx.Response(502, text="<html>bad gateway</html>"),
        kis_error("EGW00205", status=500),
        httpx.Response(200, text="<html>truncated"),
        ok({"rt_cd": "0", "msg_cd": "APBK0013", "msg1": "주문 전송 완료 되었습니다.", "output": {}}),
    ],
)
async def test_order_outcome_unknown_after_exactly_one_post(
    harness: Harness, failure: Exception | httpx.Response
) -> None:
    harness.kis.script(ORDER, failure)
    async with harness.client() as kis:
        with pytest.raises(e.OutcomeUnknown) as info:
            await kis.order_cash(Side.BUY, "005930", 3, "00", 70000)
    assert len(harness.kis.calls(ORDER)) == 1
    assert harness.sleeps == []
    assert info.value.request["symbol"] == "005930"
    assert info.value.tr_id == "TTTC0012U"


async def test_order_rate_limit_is_retried(harness: Harness) -> None:
    harness.kis.script(ORDER, kis_error("EGW00201", status=500), kis_error("EGW00215", status=200))
    async with harness.client() as kis:
        ack = await kis.order_cash(Side.SELL, "005930", 3, "01")
    assert ack.odno == "6555"
    assert len(harness.kis.calls(ORDER)) == 3
    assert harness.sleeps == [1.0, 2.0]


async def test_order_rate_limit_budget_exhausted(harness: Harness) -> None:
    harness.kis.script(ORDER, *[kis_error("EGW00201", status=500)] * 4)
    async with harness.client() as kis:
        with pytest.raises(e.RateLimited):
            await kis.order_cash(Side.SELL, "005930", 3, "01")
    assert len(harness.kis.calls(ORDER)) == 4


async def test_order_never_connected_is_retried(harness: Harness) -> None:
    harness.kis.script(ORDER, httpx.ConnectError("refused"), httpx.ConnectTimeout("syn lost"))
    async with harness.client() as kis:
        await kis.order_cash(Side.SELL, "005930", 3, "01")
    assert len(harness.kis.calls(ORDER)) == 3


async def test_order_business_rejection_is_final(harness: Harness) -> None:
    harness.kis.script(ORDER, kis_error("APBK0952", "주문가능금액을 초과 했습니다", rt_cd="7"))
    async with harness.client() as kis:
        with pytest.raises(e.BusinessRejected) as info:
            await kis.order_cash(Side.BUY, "005930", 3, "01")
    assert info.value.msg_cd == "APBK0952"
    assert len(harness.kis.calls(ORDER)) == 1


async def test_order_with_expired_token_is_resent_once_with_a_new_token(harness: Harness) -> None:
    async with harness.client() as kis:
        await kis.inquire_price("000660")
        harness.kis.script(ORDER, kis_error("EGW00123", status=500))
        await kis.order_cash(Side.BUY, "005930", 1, "01")
    posts = harness.kis.calls(ORDER)
    assert [p.headers["authorization"] for p in posts] == ["Bearer token-SECRET-1", "Bearer token-SECRET-2"]


async def test_cancel_and_modify_bodies(harness: Harness) -> None:
    async with harness.client() as kis:
        await kis.cancel("0001566017", "06010")
        await kis.cancel(1566017, "06010", 2)
        await kis.modify("2895", "00950", ord_dvsn="03", price=99999)
        await kis.modify("2895", "00950", ord_dvsn="00", price=70100, qty=5)
    bodies = [json.loads(r.content) for r in harness.kis.calls(ep.ORDER_RVSECNCL_PATH)]
    assert all(r.headers["tr_id"] == "TTTC0013U" for r in harness.kis.calls(ep.ORDER_RVSECNCL_PATH))
    assert bodies[0] == {
        "CANO": "87654321",
        "ACNT_PRDT_CD": "01",
        "KRX_FWDG_ORD_ORGNO": "06010",
        "ORGN_ODNO": "0001566017",
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": "0",
        "ORD_UNPR": "0",
        "QTY_ALL_ORD_YN": "Y",
    }
    assert (bodies[1]["ORGN_ODNO"], bodies[1]["ORD_QTY"], bodies[1]["QTY_ALL_ORD_YN"]) == ("0001566017", "2", "N")
    assert (bodies[2]["RVSE_CNCL_DVSN_CD"], bodies[2]["ORD_UNPR"], bodies[2]["ORGN_ODNO"]) == ("01", "0", "2895")
    assert (bodies[3]["ORD_UNPR"], bodies[3]["ORD_QTY"]) == ("70100", "5")


@pytest.mark.parametrize("failure", [httpx.ReadTimeout("x"), httpx.Response(500, text="x")])
async def test_cancel_outcome_unknown(harness: Harness, failure: Exception | httpx.Response) -> None:
    harness.kis.script(ep.ORDER_RVSECNCL_PATH, failure)
    async with harness.client() as kis:
        with pytest.raises(e.OutcomeUnknown) as info:
            await kis.cancel("0001566017", "06010")
    assert info.value.request["op"] == "cancel"
    assert len(harness.kis.calls(ep.ORDER_RVSECNCL_PATH)) == 1


async def test_order_argument_checks_send_nothing(harness: Harness) -> None:
    async with harness.client() as kis:
        with pytest.raises(ValueError, match="positive"):
            await kis.order_cash(Side.BUY, "005930", 0, "00", 100)
        with pytest.raises(ValueError, match="price"):
            await kis.order_cash(Side.BUY, "005930", 1, "00", 0)
        with pytest.raises(ValueError, match="positive"):
            await kis.cancel("1", "06010", 0)
    assert harness.kis.calls(ORDER) == []


async def test_hashkey_is_sent_for_the_exact_body(harness: Harness) -> None:
    async with harness.client(use_hashkey=True) as kis:
        await kis.order_cash(Side.BUY, "005930", 3, "00", 70000)
    (hash_call,) = harness.kis.calls(ep.HASHKEY_PATH)
    (post,) = harness.kis.calls(ORDER)
    assert hash_call.content == post.content
    assert post.headers["hashkey"] == "ab" * 32
    assert hash_call.headers["appsecret"] == APP_SECRET


async def test_approval_key_uses_secretkey(harness: Harness) -> None:
    async with harness.client() as kis:
        key = await kis.approval_key()
    (request,) = harness.kis.calls(ep.APPROVAL_PATH)
    assert json.loads(request.content)["secretkey"] == APP_SECRET
    assert "authorization" not in request.headers
    assert key.value.get_secret_value().startswith("approval-SECRET")


# --- paging -------------------------------------------------------------------------------------------


def ccld_page(odnos: list[str], fk: str, nk: str) -> dict[str, object]:
    body = load_sample("inquire_daily_ccld__doc_example.json")["response_body"]
    row = body["output1"][0]
    return {**body, "ctx_area_fk100": fk, "ctx_area_nk100": nk, "output1": [{**row, "odno": o} for o in odnos]}


async def test_daily_ccld_follows_three_pages(harness: Harness) -> None:
    fk1, nk1 = "87654321^01^20260303^20260303^ ^00^00^".ljust(100), "0000000002".ljust(100)
    fk2, nk2 = fk1, "0000000004".ljust(100)
    harness.kis.script(
        ep.INQUIRE_DAILY_CCLD_PATH,
        ok(ccld_page(["0000000001", "0000000002"], fk1, nk1), tr_cont="M"),
        ok(ccld_page(["0000000003", "0000000004"], fk2, nk2), tr_cont="F"),
        ok(ccld_page(["0000000005"], fk2, " " * 100), tr_cont="D"),
    )
    async with harness.client() as kis:
        result = await kis.inquire_daily_ccld(date(2026, 3, 3), date(2026, 3, 3), ccld_dvsn=CcldDvsn.UNFILLED)
    assert [r.odno for r in result.rows] == ["1", "2", "3", "4", "5"]
    assert result.summary is not None
    calls = harness.kis.calls(ep.INQUIRE_DAILY_CCLD_PATH)
    assert [c.headers["tr_cont"] for c in calls] == ["", "N", "N"]
    assert [query(c)["CTX_AREA_NK100"] for c in calls] == ["", nk1, nk2]  # sent back unchanged, padding too
    assert query(calls[1])["CTX_AREA_FK100"] == fk1
    first = query(calls[0])
    assert (first["CANO"], first["ACNT_PRDT_CD"], first["CCLD_DVSN"]) == ("87654321", "01", "02")
    assert all(c.headers["tr_id"] == "TTTC0081R" for c in calls)
    assert harness.limiter.priorities[-1] is Priority.RECONCILE


async def test_daily_ccld_since_an_order_time_stops_at_the_page_that_reaches_it(harness: Harness) -> None:
    def page(times: list[str], nk: str) -> dict[str, object]:
        body = ccld_page([f"{i + int(nk):010d}" for i in range(len(times))], "fk".ljust(100), nk.ljust(100))
        rows = body["output1"]
        assert isinstance(rows, list)
        return {**body, "output1": [{**r, "ord_tmd": t} for r, t in zip(rows, times, strict=True)]}

    harness.kis.script(
        ep.INQUIRE_DAILY_CCLD_PATH,
        ok(page(["101500", "101000"], "10"), tr_cont="M"),  # newest first
        ok(page(["100500", "095900"], "20"), tr_cont="M"),  # reaches past 10:00: the last one needed
        ok(page(["093000"], "30"), tr_cont="D"),
    )
    async with harness.client() as kis:
        result = await kis.inquire_daily_ccld(date(2026, 3, 3), date(2026, 3, 3), ordered_since=time(10, 0))
        with pytest.raises(ValueError, match="newest-first"):
            await kis.inquire_daily_ccld(date(2026, 3, 3), date(2026, 3, 3), ordered_since=time(10, 0),
                                         oldest_first=True)
    assert [r.ord_tmd for r in result.rows] == [time(10, 15), time(10, 10), time(10, 5), time(9, 59)]
    calls = harness.kis.calls(ep.INQUIRE_DAILY_CCLD_PATH)
    assert len(calls) == 2 and query(calls[0])["INQR_DVSN"] == "00"


async def test_paging_is_capped(harness: Harness) -> None:
    for i in range(3):
        harness.kis.script(ep.INQUIRE_DAILY_CCLD_PATH, ok(ccld_page([str(i)], f"fk{i}", f"nk{i}"), tr_cont="M"))
    async with harness.client(max_pages=2) as kis:
        with pytest.raises(e.PagingLimitExceeded):
            await kis.inquire_daily_ccld(date(2026, 3, 3), date(2026, 3, 3))
    assert len(harness.kis.calls(ep.INQUIRE_DAILY_CCLD_PATH)) == 2


async def test_paging_that_does_not_advance_is_an_error(harness: Harness) -> None:
    page = ok(ccld_page(["1"], "same", "same"), tr_cont="M")
    harness.kis.script(ep.INQUIRE_DAILY_CCLD_PATH, page, ok(ccld_page(["1"], "same", "same"), tr_cont="M"))
    async with harness.client() as kis:
        with pytest.raises(e.MalformedResponse, match="advance"):
            await kis.inquire_daily_ccld(date(2026, 3, 3), date(2026, 3, 3))


async def test_old_orders_use_the_other_tr_on_paper(harness: Harness) -> None:
    harness.kis.script(ep.INQUIRE_DAILY_CCLD_PATH, ok(ccld_page([], "", "")))
    async with harness.client(KisEnv.PAPER) as kis:
        await kis.inquire_daily_ccld(date(2025, 10, 1), date(2025, 10, 2))
    assert harness.kis.calls(ep.INQUIRE_DAILY_CCLD_PATH)[0].headers["tr_id"] == "VTSC9215R"
    assert str(harness.kis.calls(ep.INQUIRE_DAILY_CCLD_PATH)[0].url).startswith("https://kis.test/")


async def test_balance_and_rvsecncl_paging(harness: Harness) -> None:
    body = load_sample("inquire_balance__doc_example.json")["response_body"]
    harness.kis.script(ep.INQUIRE_BALANCE_PATH, ok(body, tr_cont="M"), ok({**body, "ctx_area_nk100": "x"}, tr_cont="E"))
    rv = load_sample("inquire_psbl_rvsecncl__doc_example.json")["response_body"]
    harness.kis.script(ep.INQUIRE_PSBL_RVSECNCL_PATH, ok(rv, tr_cont="D"))
    async with harness.client(KisEnv.PAPER) as kis:
        balance = await kis.inquire_balance()
    async with harness.client() as kis:
        rows = await kis.inquire_psbl_rvsecncl()
    assert len(balance.rows) == 4
    assert balance.summary is not None
    assert harness.kis.calls(ep.INQUIRE_BALANCE_PATH)[0].headers["tr_id"] == "VTTC8434R"
    assert len(rows) == 2
    assert harness.kis.calls(ep.INQUIRE_PSBL_RVSECNCL_PATH)[0].headers["tr_id"] == "TTTC0084R"


async def test_quote_endpoints(harness: Harness) -> None:
    harness.kis.script(
        ep.INQUIRE_ASKING_PRICE_PATH, ok(load_sample("inquire_asking_price_exp_ccn__doc_example.json")["response_body"])
    )
    harness.kis.script(
        ep.INQUIRE_MINUTE_BARS_PATH, ok(load_sample("inquire_time_itemchartprice__doc_example.json")["response_body"])
    )
    harness.kis.script(ep.VOLUME_RANK_PATH, ok(load_sample("volume_rank__doc_example.json")["response_body"]))
    harness.kis.script(
        ep.INQUIRE_PSBL_ORDER_PATH, ok(load_sample("inquire_psbl_order__doc_example.json")["response_body"])
    )
    async with harness.client() as kis:
        book = await kis.inquire_asking_price("000660")
        bars = await kis.inquire_minute_bars("000660", time(10, 0))
        ranks = await kis.volume_rank()
        psbl = await kis.inquire_psbl_order("005930")
    assert len(book.asks) == 10
    assert bars.bars[0].close == 92500
    assert query(harness.kis.calls(ep.INQUIRE_MINUTE_BARS_PATH)[0])["FID_INPUT_HOUR_1"] == "100000"
    assert ranks[0].symbol == "005930"
    assert query(harness.kis.calls(ep.VOLUME_RANK_PATH)[0])["FID_COND_SCR_DIV_CODE"] == "20171"
    assert psbl.nrcvb_buy_qty == 1531
    assert harness.limiter.priorities == [Priority.ORDER] + [Priority.POLL] * 3 + [Priority.RECONCILE]


def test_credentials_validation_does_not_echo_values() -> None:
    with pytest.raises(ValueError, match="12345678-01") as info:
        KisCredentials.of(APP_KEY, APP_SECRET, "1234-SECRETACCT")
    assert "SECRETACCT" not in str(info.value)
    creds = KisCredentials.of(APP_KEY, APP_SECRET, ACCOUNT)
    assert (creds.cano, creds.acnt_prdt_cd) == ("87654321", "01")
    assert creds.key_id(KisEnv.REAL).startswith("kis-real-")
    assert APP_KEY not in creds.key_id(KisEnv.REAL)
