"""KIS's 국내휴장일조회 (chk-holiday) as the adapter reads it: opnd_yn decides, bass_dt is the day."""

from __future__ import annotations

from datetime import date

import pytest

from stock_manager.shared.kis.errors import KisParseError
from stock_manager.shared.kis.rest import HolidayDay, parse_holidays


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
