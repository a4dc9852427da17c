"""No app key, app secret, token, approval key, account number or HTS ID in any exception text,
repr, event or log line, however the failure happens (including servers that echo them back)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from stock_manager.shared.kis import endpoints as ep
from stock_manager.shared.kis import errors as e
from stock_manager.shared.kis import ws_frames as wf
from stock_manager.shared.kis.models import Side

from .conftest import ACCOUNT, APP_KEY, APP_SECRET, HTS_ID, SECRETS, Harness, kis_error, ok

TOKEN = "token-SECRET-1"
APPROVAL = "approval-SECRET-uuid-0000-000000000000"
ALL_SECRETS = (*SECRETS, TOKEN, APPROVAL)


# Clipped values count as leaks too: the first 12 characters of every long secret.
NEEDLES = (*ALL_SECRETS, *(s[:12] for s in ALL_SECRETS if len(s) > 12))


def assert_clean(*texts: object) -> None:
    for text in texts:
        for secret in NEEDLES:
            assert secret not in str(text), f"secret leaked into {str(text)[:200]!r}"


def exception_texts(exc: BaseException) -> Iterator[str]:
    seen: BaseException | None = exc
    while seen is not None:
        yield str(seen)
        yield repr(seen)
        yield repr(getattr(seen, "raw", None))
        yield repr(getattr(seen, "request", None))
        yield repr(seen.args)
        seen = seen.__cause__ or seen.__context__


ECHO = {"rt_cd": "1", "msg_cd": "OPSQ2001", "msg1": f"bad key {APP_KEY} for {ACCOUNT} / 8765432101 token {TOKEN}"}
ECHO_NESTED = {**ECHO, "output": [{"CANO": "87654321", "appsecret": APP_SECRET, "note": HTS_ID}]}


@pytest.mark.parametrize(
    ("path", "step", "error"),
    [
        (ep.INQUIRE_PRICE_PATH, ok(ECHO_NESTED), e.BusinessRejected),
        (ep.INQUIRE_PRICE_PATH, httpx.Response(500, json=ECHO_NESTED), e.ServerError),
        (ep.INQUIRE_PRICE_PATH, httpx.Response(400, json=ECHO_NESTED), e.ClientError),
        (ep.INQUIRE_PRICE_PATH, kis_error("EGW02004", f"{APP_KEY} is a paper key", status=500), e.AuthRejected),
        (ep.INQUIRE_PRICE_PATH, kis_error("MCA00124", f"no service for {ACCOUNT}"), e.ServiceNotFound),
        (ep.INQUIRE_PRICE_PATH, ok({"rt_cd": "0", "output": {"stck_prpr": APP_SECRET}}), e.MalformedResponse),
        (
            ep.INQUIRE_PRICE_PATH,
            httpx.ConnectError(f"cannot reach ?CANO=87654321 appsecret={APP_SECRET}"),
            e.TransportError,
        ),
        (
            ep.ORDER_CASH_PATH,
            httpx.ReadTimeout(f"timed out; headers appkey={APP_KEY} auth=Bearer {TOKEN}"),
            e.OutcomeUnknown,
        ),
        (ep.ORDER_CASH_PATH, httpx.Response(500, json=ECHO_NESTED), e.OutcomeUnknown),
        (ep.ORDER_CASH_PATH, ok(ECHO_NESTED), e.BusinessRejected),
        (
            ep.TOKEN_PATH,
            httpx.Response(403, json={"error_code": "EGW00133", "error_description": APP_KEY}),
            e.TokenIssueTooOften,
        ),
    ],
)
async def test_errors_never_carry_secrets(
    harness: Harness,
    log_lines: list[str],
    path: str,
    step: httpx.Response | Exception,
    error: type[e.KisError],
) -> None:
    harness.kis.script(path, *([step] * 5))
    async with harness.client(max_token_wait=0) as kis:
        call = (
            kis.order_cash(Side.BUY, "005930", 1, "01") if path == ep.ORDER_CASH_PATH else kis.inquire_price("005930")
        )
        with pytest.raises(error) as info:
            await call
        assert_clean(repr(kis))
    assert_clean(*exception_texts(info.value))
    assert_clean(*log_lines)


async def test_token_expiry_and_too_often_paths_are_clean(harness: Harness, log_lines: list[str]) -> None:
    async with harness.client(max_token_wait=0) as kis:
        await kis.inquire_price("005930")
        harness.kis.script(ep.INQUIRE_PRICE_PATH, kis_error("EGW00123", f"expired {TOKEN}", status=500))
        with pytest.raises(e.TokenIssueTooOften) as info:
            await kis.inquire_price("005930")
        harness.clock.advance(61)
        token = await kis.access_token()
        approval = await kis.approval_key()
    assert_clean(*exception_texts(info.value), repr(token), str(token), repr(approval), *log_lines)
    assert_clean(repr(harness.store.tokens), repr(harness.credentials), str(harness.credentials))


async def test_httpx_request_log_is_redacted(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """httpx logs each URL at INFO; account queries put CANO in the query string."""
    harness.kis.script(ep.INQUIRE_DAILY_CCLD_PATH, ok({"rt_cd": "0", "output1": [], "output2": {}}))
    with caplog.at_level(logging.DEBUG):
        async with harness.client() as kis:
            await kis.inquire_daily_ccld(date(2026, 3, 3), date(2026, 3, 3))
    assert any("inquire-daily-ccld" in r.getMessage() for r in caplog.records)
    assert_clean(*(r.getMessage() for r in caplog.records))


def test_notice_parsing_drops_secrets_even_on_error() -> None:
    fields = [HTS_ID, "8765432101", "0000000001", "", "02", "0", "00", "0", "005930", "x"] + ["0"] * 16
    with pytest.raises(e.KisParseError) as info:
        wf.parse_notice(fields)
    assert_clean(str(info.value), repr(info.value))
    fields[9] = "1"
    fields[11] = "093000"
    fields[17] = "홍길동"
    notice = wf.parse_notice(fields)
    assert_clean(repr(notice), str(notice))
    assert "홍길동" not in repr(notice)
