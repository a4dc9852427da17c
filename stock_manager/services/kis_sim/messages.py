"""The KIS messages the simulator answers with.

Codes and texts marked "seen" come from ``kis-api-facts.md`` / ``kis-samples``.  Where KIS's
exact code was never observed, the simulator uses a code of the same family (APBK… for real
business errors, 40xx0000 with a 모의투자 prefix on paper) and says so here, so nobody mistakes
an invented code for a documented one.  Clients must branch on ``msg_cd`` families and
``rt_cd``, never on the exact text.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Env


@dataclass(frozen=True, slots=True)
class Msg:
    rt_cd: str
    msg_cd: str
    msg1: str


class BizError(Exception):
    """A business rejection: HTTP 200 with rt_cd != "0" (or the given status for gateway errors)."""

    def __init__(self, msg: Msg, status: int = 200) -> None:
        super().__init__(msg.msg1)
        self.msg = msg
        self.status = status


def _pick(env: Env, real: Msg, paper: Msg) -> Msg:
    return real if env == "real" else paper


# --- success (seen) ------------------------------------------------------------------------------
ORDER_OK_REAL = Msg("0", "APBK0013", "주문 전송 완료 되었습니다.")
PAPER_BUY_OK = Msg("0", "40600000", "모의투자 매수주문이 완료 되었습니다.")
PAPER_SELL_OK = Msg("0", "40600000", "모의투자 매도주문이 완료 되었습니다.")  # msg_cd unconfirmed
PAPER_MODIFY_OK = Msg("0", "40620000", "모의투자 정정주문이 완료 되었습니다.")
PAPER_CANCEL_OK = Msg("0", "40630000", "모의투자 취소주문이 완료 되었습니다.")  # invented code
QUERY_OK = Msg("0", "KIOK0510", "조회가 완료되었습니다".ljust(80))
QUERY_MORE = Msg("0", "KIOK0490", "조회가 계속됩니다".ljust(80))
QUERY_LAST = Msg("0", "KIOK0460", "조회 되었습니다. (마지막 자료)".ljust(80))
QUOTE_OK = Msg("0", "MCA00000", "정상처리 되었습니다!")
NO_DATA = Msg("7", "KIOK0560", "조회할 내용이 없습니다")  # rt_cd 7 = no data; code unconfirmed
RANK_OK = Msg("0", "MCA00000", "정상처리 되었습니다.")

# --- business rejections -----------------------------------------------------------------------
INSUFFICIENT_CASH = Msg("7", "APBK0952", "주문가능금액을 초과 했습니다")  # seen (rt_cd 7)
INSUFFICIENT_QTY = Msg("1", "APBK0919", "주문가능수량을 초과하였습니다")  # seen only in a fixture
OFF_TICK = Msg("1", "APBK0506", "주식주문호가단위 오류입니다.")  # text seen, code invented
BAD_QTY = Msg("1", "APBK0504", "주문수량을 확인 하여 주십시요.")  # text seen, code invented
OVER_UPPER = Msg("1", "APBK0507", "주문단가가 상한가를 초과합니다.")  # invented
UNDER_LOWER = Msg("1", "APBK0508", "주문단가가 하한가 미만입니다.")  # invented
HALTED = Msg("1", "APBK0656", "매매거래정지 종목입니다.")  # invented
NO_SYMBOL = Msg("1", "APBK0645", "종목코드를 확인하여 주십시요.")  # invented
NOT_IN_AUCTION = Msg("1", "APBK0543", "단일가매매시간에는 해당 주문구분을 사용할 수 없습니다.")  # invented
# 장후 시간외 (06) / 시간외 단일가 (07) outside their own window; invented
OFF_HOURS_CLOSED = Msg("1", "APBK0544", "시간외 주문가능시간이 아닙니다.")
NO_ORIGINAL = Msg("1", "APBK0915", "원주문번호가 존재하지 않습니다.")  # invented
REVISE_OVER = Msg("1", "APBK0916", "정정/취소수량이 주문잔량을 초과합니다.")  # invented
BAD_RVSE_CODE = Msg("1", "APBK0917", "정정취소구분코드를 확인하여 주십시요.")  # invented


def order_ok(env: Env, side: str) -> Msg:
    if env == "real":
        return ORDER_OK_REAL
    return PAPER_BUY_OK if side == "BUY" else PAPER_SELL_OK


def modify_ok(env: Env) -> Msg:
    return _pick(env, ORDER_OK_REAL, PAPER_MODIFY_OK)


def cancel_ok(env: Env) -> Msg:
    return _pick(env, ORDER_OK_REAL, PAPER_CANCEL_OK)


def before_open(env: Env) -> Msg:
    # paper code seen (40570000); the real code is invented
    return _pick(env, Msg("1", "APBK1664", "장시작전 입니다."), Msg("1", "40570000", "모의투자 장시작전 입니다."))


def after_close(env: Env) -> Msg:
    # paper code seen (40580000); the real code is invented
    return _pick(env, Msg("1", "APBK1665", "장종료 입니다."), Msg("1", "40580000", "모의투자 장종료 입니다."))


def unsupported_dvsn(env: Env) -> Msg:
    # paper text is KIS's usual answer for what paper lacks; both codes invented
    return _pick(
        env,
        Msg("1", "APBK0547", "주문구분을 확인하여 주십시요."),
        Msg("1", "40310000", "모의투자에서는 해당업무가 제공되지 않습니다."),
    )


def nothing_to_revise(env: Env) -> Msg:
    # invented codes: KIS's answer to cancelling a fully filled order was never captured
    return _pick(
        env,
        Msg("1", "APBK0344", "정정/취소할 수량이 없습니다."),
        Msg("1", "40330000", "모의투자 정정/취소할 수량이 없습니다."),
    )


# --- gateway / input errors (HTTP 500) ---------------------------------------------------------
RATE_LIMIT = Msg("1", "EGW00201", "초당 거래건수를 초과하였습니다.")  # seen, HTTP 500
TOKEN_INVALID = Msg("1", "EGW00121", "유효하지 않은 token 입니다.")  # seen
TOKEN_EXPIRED = Msg("1", "EGW00123", "기간이 만료된 token 입니다.")  # code seen, text unconfirmed
BEARER_MISSING = Msg("1", "EGW00205", "credentials_type이 유효하지 않습니다.(Bearer)")  # unconfirmed
APPKEY_MISMATCH = Msg("1", "EGW00103", "유효하지 않은 AppKey입니다.")  # unconfirmed
APPSECRET_MISMATCH = Msg("1", "EGW00105", "유효하지 않은 AppSecret입니다.")  # unconfirmed
SERVICE_NOT_FOUND = Msg("1", "MCA00124", "해당 서비스를 찾을수 없습니다.")  # seen (paper)
NO_SERVICE_CODE = Msg("1", "OPSQ0002", "없는 서비스 코드 입니다")  # seen in a third-party test
INVALID_ACCOUNT = Msg("1", "OPSQ2000", "ERROR : INPUT INVALID_CHECK_ACNO")  # unconfirmed
GATEWAY_ERROR = Msg("1", "EGW00002", "서버 에러가 발생했습니다.")  # fault injection; invented


def missing_field(name: str) -> Msg:
    return Msg("1", "OPSQ2001", f"ERROR : INPUT_FIELD_NAME {name}")  # seen
