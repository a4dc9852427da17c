"""The one classification of KIS answers, over every code the fact sheet lists."""

from __future__ import annotations

from typing import Any

import pytest

from stock_manager.shared.kis import errors as e
from stock_manager.shared.kis.errors import ErrorCategory as C


def body(msg_cd: str, msg1: str = "", rt_cd: str = "1") -> dict[str, Any]:
    return {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}


def oauth(code: str, text: str = "") -> dict[str, Any]:
    return {"error_code": code, "error_description": text}


TABLE: list[tuple[int, dict[str, Any] | None, C | None]] = [
    (500, body("EGW00201", "초당 거래건수를 초과하였습니다."), C.RATE_LIMITED),
    (200, body("EGW00201", "초당 거래건수를 초과하였습니다."), C.RATE_LIMITED),
    (500, body("EGW00215", "원장에서 허용 가능한 초당 거래건수를 초과하였습니다."), C.RATE_LIMITED),
    (200, body("EGW00215"), C.RATE_LIMITED),
    (429, None, C.RATE_LIMITED),
    (500, body("EGW00123", "기간이 만료된 token 입니다."), C.TOKEN_EXPIRED),
    (200, body("EGW00123"), C.TOKEN_EXPIRED),
    (500, body("EGW00121", "유효하지 않은 token 입니다."), C.TOKEN_EXPIRED),
    (403, oauth("EGW00121", "유효하지 않은 token 입니다."), C.TOKEN_EXPIRED),
    (403, oauth("EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)"), C.TOKEN_ISSUE_TOO_OFTEN),
    (200, oauth("EGW00133"), C.TOKEN_ISSUE_TOO_OFTEN),
    (500, body("EGW02004", "실전투자 도메인은 모의투자 앱키로 호출하실 수 없습니다."), C.AUTH_REJECTED),
    (200, body("MCA00124", "해당 서비스를 찾을수 없습니다."), C.SERVICE_NOT_FOUND),
    (500, body("MCA00124"), C.SERVICE_NOT_FOUND),
    (200, body("OPSQ0002", "없는 서비스 코드 입니다"), C.SERVICE_NOT_FOUND),
    (200, body("OPSQ2001", "ERROR : INPUT_FIELD_NAME CMA_EVLU_AMT_ICLD_YN"), C.BUSINESS_REJECTED),
    (200, body("APBK0013", "주문 전송 완료 되었습니다.", rt_cd="0"), None),
    (200, body("APBK0952", "주문가능금액을 초과 했습니다", rt_cd="7"), C.BUSINESS_REJECTED),
    (200, body("APBK0919", "주문가능수량을 초과하였습니다"), C.BUSINESS_REJECTED),
    (200, body("40600000", "모의투자 매수주문이 완료 되었습니다.", rt_cd="0"), None),
    (200, body("40620000", "모의투자 정정주문이 완료 되었습니다.", rt_cd="0"), None),
    (200, body("40570000", "모의투자 장시작전 입니다."), C.BUSINESS_REJECTED),
    (200, body("40580000", "모의투자 장종료 입니다."), C.BUSINESS_REJECTED),
    (200, body("KIOK0510", "조회가 완료되었습니다          ", rt_cd="0"), None),
    (200, body("KIOK0460", "조회 되었습니다.(마지막 자료)", rt_cd="0"), None),
    (200, body("KIOK0490", "조회가 계속됩니다", rt_cd="0"), None),
    (200, body("MCA00000", "정상처리 되었습니다!", rt_cd="0"), None),
    (200, body("", "주식주문호가단위 오류입니다."), C.BUSINESS_REJECTED),
    (200, {"rt_cd": " 1 ", "msg1": "주문수량을 확인 하여 주십시요."}, C.BUSINESS_REJECTED),
    (500, body("EGW00205"), C.SERVER_ERROR),
    (500, None, C.SERVER_ERROR),
    (502, None, C.SERVER_ERROR),
    (503, body("", "Service Unavailable"), C.SERVER_ERROR),
    (200, None, C.MALFORMED),
    (400, body("", "bad request"), C.CLIENT_ERROR),
    (404, None, C.CLIENT_ERROR),
    (401, None, C.AUTH_REJECTED),
    (403, None, C.AUTH_REJECTED),
    (200, {"access_token": "x", "token_type": "Bearer", "expires_in": 86400}, None),
    (200, {"approval_key": "x"}, None),
    (200, {"code": 200, "message": "접근토큰 폐기에 성공하였습니다"}, None),
]


@pytest.mark.parametrize(("status", "payload", "expected"), TABLE)
def test_classify(status: int, payload: dict[str, Any] | None, expected: C | None) -> None:
    assert e.classify(status, payload) is expected


@pytest.mark.parametrize(
    ("category", "cls", "retryable"),
    [
        (C.RATE_LIMITED, e.RateLimited, True),
        (C.TOKEN_EXPIRED, e.TokenExpired, False),
        (C.TOKEN_ISSUE_TOO_OFTEN, e.TokenIssueTooOften, False),
        (C.AUTH_REJECTED, e.AuthRejected, False),
        (C.SERVICE_NOT_FOUND, e.ServiceNotFound, False),
        (C.SERVER_ERROR, e.ServerError, True),
        (C.MALFORMED, e.MalformedResponse, True),
        (C.CLIENT_ERROR, e.ClientError, False),
        (C.BUSINESS_REJECTED, e.BusinessRejected, False),
    ],
)
def test_error_for_builds_the_right_exception(category: C, cls: type[e.KisError], retryable: bool) -> None:
    raw = body("APBK0952", "주문가능금액을 초과 했습니다     ", rt_cd="7")
    exc = e.error_for(category, http_status=200, body=raw, tr_id="TTTC0012U", path="/p")
    assert type(exc) is cls
    assert exc.retryable is retryable
    assert exc.msg1 == "주문가능금액을 초과 했습니다"
    assert exc.raw == raw
    text = str(exc)
    assert "msg_cd=APBK0952" in text
    assert "http=200" in text
    assert "tr_id=TTTC0012U" in text
    assert "path=/p" in text
    assert "rt_cd" not in text  # the raw body stays out of str/repr
    assert repr(exc).startswith(cls.__name__)


def test_outcome_unknown_carries_request_identifiers() -> None:
    exc = e.OutcomeUnknown("no answer", cause="ReadTimeout", request={"symbol": "005930", "qty": "3"}, tr_id="T")
    assert "cause=ReadTimeout" in str(exc)
    assert "symbol=005930" in str(exc)
    assert exc.category is C.OUTCOME_UNKNOWN
    assert not exc.retryable


def test_error_for_refuses_client_only_categories() -> None:
    with pytest.raises(ValueError, match="classify"):
        e.error_for(C.OUTCOME_UNKNOWN, http_status=500, body=None)
