"""The calendar's tables on a real PostgreSQL: the library's rows, the operator's CLI, KIS's answer."""

from __future__ import annotations

import asyncio
from datetime import date, time

import psycopg
import pytest

from stock_manager import calendar_cmd
from stock_manager.cli import build_parser, main
from stock_manager.shared import calendar as cal
from stock_manager.shared.calendar import Session
from stock_manager.shared.db.pool import connect
from tests.support.pg import TestDb


async def test_refresh_set_and_load_layer_the_three_tables(db: TestDb, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    n = await calendar_cmd.refresh(db.admin_url, date(2026, 1, 1), date(2026, 12, 31))
    assert n == 261  # every weekday of 2026
    assert await calendar_cmd.refresh(db.admin_url, date(2026, 1, 1), date(2026, 12, 31)) == 0  # idempotent

    monkeypatch.setenv("DATABASE_URL", db.admin_url)
    csat = ["calendar", "set", "2026-11-19", "--open", "10:00", "--close", "16:30", "--reason", "수능"]
    assert await asyncio.to_thread(main, csat) == 0
    assert await asyncio.to_thread(main, ["calendar", "set", "2026-06-04", "--closed", "--reason", "임시휴장"]) == 0
    assert "2026-11-19: SHIFTED 10:00-16:30" in capsys.readouterr().out

    async with await connect(db.url("strategy"), autocommit=False) as conn:
        await cal.record_kis_check(conn, date(2026, 12, 24), False, {"opnd_yn": "N"})
        await conn.commit()
        loaded = await cal.load_calendar(conn, date(2026, 1, 1), date(2026, 12, 31))
    assert loaded.session(date(2026, 11, 19)) == Session(date(2026, 11, 19), time(10), time(16, 30))
    assert loaded.session(date(2026, 6, 4)) is None  # the operator closed it
    assert loaded.session(date(2026, 6, 3)) is None  # the library's correction: election day
    assert loaded.session(date(2026, 5, 25)) is None  # the library: 부처님오신날 대체공휴일
    assert loaded.session(date(2026, 1, 2)) == Session(date(2026, 1, 2), time(10), time(15, 30))
    assert loaded.session(date(2026, 12, 24)) is None  # KIS said N
    assert loaded.session(date(2026, 12, 23)) == Session(date(2026, 12, 23))

    assert await asyncio.to_thread(main, ["calendar", "set", "2026-06-04", "--clear"]) == 0
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["calendar", "show", "--from", "2026-06-01", "--to", "2026-06-30"]) == 0
    shown = capsys.readouterr().out
    assert "2026-06-04" not in shown  # the library trades that day; only the override had closed it
    assert "2026-06-03 Wed CLOSED" in shown
    assert "2026-06-06" not in shown  # a Saturday holiday has no row: weekends are closed by rule



async def test_services_read_the_calendar_but_only_strategy_writes_kis_answers(db: TestDb) -> None:
    async with await connect(db.url("execution")) as conn:
        await conn.execute("SELECT * FROM ops.trading_days, ops.trading_day_overrides, ops.kis_holiday_checks")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await cal.set_override(conn, date(2026, 6, 3), cal.DayEntry(cal.DayKind.CLOSED))
    async with await connect(db.url("strategy")) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await cal.set_override(conn, date(2026, 6, 3), cal.DayEntry(cal.DayKind.CLOSED))


async def test_the_database_refuses_a_kind_outside_the_vocabulary_or_hours_that_disagree(db: TestDb) -> None:
    async with await connect(db.admin_url) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute("INSERT INTO ops.trading_day_overrides (trade_date, kind) VALUES ('2026-06-03', 'HALF')")
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute("INSERT INTO ops.trading_day_overrides (trade_date, kind, open_time, close_time) "
                               "VALUES ('2026-06-03', 'CLOSED', '09:00', '15:30')")


def test_set_refuses_hours_on_a_closed_day() -> None:
    args = build_parser().parse_args(["calendar", "set", "2026-06-03", "--closed", "--open", "10:00"])
    with pytest.raises(ValueError, match="no hours"):
        calendar_cmd.override_entry(args)
