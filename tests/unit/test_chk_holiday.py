"""KIS's 국내휴장일조회 (chk-holiday) as the adapter reads it: opnd_yn decides, bass_dt is the day."""

from __future__ import annotations

from datetime import date

import pytest

from stock_manager.shared.kis.endpoints import KisEnv
from stock_manager.shared.kis.errors import KisParseError
from stock_manager.shared.kis.rest import CHK_HOLIDAY_PATH, HolidayDay, parse_holidays
from tests.unit.kis.conftest import Harness, ok
from tests.unit.kis.conftest import harness as harness  # the scripted KIS of the adapter's tests


def test_rows_read_as_days_with_their_flags() -> None:
    body = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.", "output": [
        {"bass_dt": "20261224", "wday_dvsn_cd": "05", "bzdy_yn": "Y", "tr_day_yn": "Y", "opnd_yn": "Y",
         "sttl_day_yn": "Y"},
        {"bass_dt": "20261225", "wday_dvsn_cd": "06", "bzdy_yn": "N", "tr_day_yn": "N", "opnd_yn": "N",
         "sttl_day_yn": "N"},
    ]}
    assert parse_holidays(body) == [
        HolidayDay(date(2026, 12, 24), True, True, True, True),
        HolidayDay(date(2026, 12, 25), False, False, False, False),
    ]


@pytest.mark.parametrize("body", [
    {"output": []},
    {"output": [{"bass_dt": "20261225", "opnd_yn": ""}]},
    {"output": [{"bass_dt": "2026-12-25", "opnd_yn": "N"}]},
    {"output": "N"},
])
def test_an_answer_without_a_clear_opnd_yn_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(KisParseError):
        parse_holidays(body)


async def test_the_adapter_asks_chk_holiday_with_its_tr_id_on_both_environments(harness: Harness) -> None:
    body = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.", "output": [
        {"bass_dt": "20261225", "wday_dvsn_cd": "06", "bzdy_yn": "N", "tr_day_yn": "N", "opnd_yn": "N",
         "sttl_day_yn": "N"}]}
    for env in (KisEnv.REAL, KisEnv.PAPER):
        harness.kis.script(CHK_HOLIDAY_PATH, ok(body))
        async with harness.client(env) as kis:
            (row,) = await kis.chk_holiday(date(2026, 12, 25))
        assert not row.opened
        req = harness.kis.calls(CHK_HOLIDAY_PATH)[-1]
        assert req.headers["tr_id"] == "CTCA0903R"  # no paper twin to prefix
        assert dict(req.url.params) == {"BASS_DT": "20261225", "CTX_AREA_NK": "", "CTX_AREA_FK": ""}
