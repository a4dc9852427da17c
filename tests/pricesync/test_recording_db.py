"""Recording for replays (issue #14), on a real database as sm_pricesync: with SM_PRICESYNC_RECORD on,
order books, quotes, the day's master and designation changes land in market.books, market.quotes,
market.symbol_days and market.designation_history; off (the sim default) nothing is written there."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal as D
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from stock_manager.services.pricesync.config import load_config
from stock_manager.services.pricesync.freshness import WsHealth
from stock_manager.services.pricesync.ingest import Ingest, IngestConfig, trade_dates_ahead
from stock_manager.services.pricesync.master import SymbolMaster
from stock_manager.services.pricesync.report import Reporter
from stock_manager.services.pricesync.symbols import SymbolInfo
from stock_manager.shared.clock import KST, ManualClock
from stock_manager.shared.db.pool import open_pool
from stock_manager.shared.kis.models import Level, Quote
from stock_manager.shared.kis.ws_frames import OrderBook
from stock_manager.shared.market_rules import Market
from stock_manager.shared.settings import Mode, SettingsError
from tests.support.pg import TestDb

from .helpers import quote, trade

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=KST)
SYM = "005930"
RECORDED = ("market.books", "market.quotes", "market.symbol_days", "market.designation_history")


def rows(db: TestDb, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(db.admin_url, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


def counts(db: TestDb) -> dict[str, int]:
    return {t: rows(db, f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in RECORDED}


def book(at: datetime, best_ask: int, *, hour: str = "0") -> OrderBook:
    asks = tuple(Level(best_ask + 10 * i, 100 + i) for i in range(10))
    bids = tuple(Level(best_ask - 10 - 10 * i, 200 + i) for i in range(10))
    return OrderBook(SYM, at.timetz().replace(tzinfo=None), hour, asks, bids, 1000, 1000, 0, 0, 0, 0, 0, 0, "3",
                     D(0), 0, 0, 0)


def designated(q: Quote, status: str, warn: str) -> Quote:
    return dataclasses.replace(q, status_code=status, mrkt_warn_cls_code=warn)


@pytest.fixture
async def ingest(db: TestDb, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Ingest, ManualClock]]:
    clock = ManualClock(T0)
    ing = Ingest(db.url("pricesync"), clock, ws_health=lambda: WsHealth(True, frozenset({SYM}), 0.5),
                 config=IngestConfig(batch_window_s=0.01, record=request.param))
    await ing.ensure_days(*trade_dates_ahead(clock.now()))
    try:
        yield ing, clock
    finally:
        await ing._drop_connection()


async def _master(db: TestDb, record_as: str | None) -> tuple[SymbolMaster, Any]:
    pool = await open_pool(db.url("pricesync"), max_size=2)

    async def emit(kind: str, message: str = "", **kw: Any) -> None:
        return None

    return SymbolMaster(pool, ManualClock(T0), Reporter(emit), record_as=record_as), pool


def test_recording_is_on_in_paper_and_live_and_off_in_sim_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SM_PRICESYNC_RECORD", raising=False)
    cfg = load_config()
    assert (cfg.recording(Mode.SIM), cfg.recording(Mode.PAPER), cfg.recording(Mode.LIVE)) == (False, True, True)
    assert load_config(record=True).recording(Mode.SIM)
    assert not load_config(record=False).recording(Mode.LIVE)
    monkeypatch.setenv("SM_PRICESYNC_RECORD", "perhaps")
    with pytest.raises(SettingsError, match="^setting SM_PRICESYNC_RECORD is malformed"):
        load_config()


@pytest.mark.parametrize("ingest", [True], indirect=True)
async def test_books_and_quotes_are_recorded(db: TestDb, ingest: tuple[Ingest, ManualClock]) -> None:
    ing, clock = ingest
    ing.add_trade(trade(SYM, T0, 10_500))
    ing.add_book(book(T0, 10_510))
    ing.add_book(book(T0, 10_520))  # the same market second, still pending: the later one stands
    ing.add_book(book(T0 + timedelta(seconds=1), 10_530, hour="C"))
    await ing.flush()
    ing.add_book(book(T0 + timedelta(seconds=1), 10_540))  # its second's row is written: not another
    clock.set(T0 + timedelta(seconds=5))
    ing.add_quote(SYM, quote(SYM, 10_550, 2000))
    await ing.flush()

    books = rows(db, "SELECT * FROM market.books ORDER BY ts")
    assert [(b["ts"], b["ask_prices"][0], b["hour_cls_code"]) for b in books] == [
        (T0, 10_520, "0"), (T0 + timedelta(seconds=1), 10_530, "C")]
    first = books[0]
    assert first["ask_prices"] == [10_520 + 10 * i for i in range(10)]
    assert first["ask_qtys"] == [100 + i for i in range(10)]
    assert first["bid_prices"] == [10_510 - 10 * i for i in range(10)]
    assert first["bid_qtys"] == [200 + i for i in range(10)]
    assert first["received_ts"] == T0
    (q,) = rows(db, "SELECT * FROM market.quotes")
    assert q == {"ts": clock.now(), "received_ts": clock.now(), "symbol": SYM, "price": 10_550, "bid": None,
                 "ask": None, "bid_qty": None, "ask_qty": None, "volume": 2000, "open": 10_000, "high": 10_550,
                 "low": 10_000}
    assert rows(db, "SELECT count(*) AS n FROM market.ticks") == [{"n": 1}]  # ticks as ever


@pytest.mark.parametrize("ingest", [False], indirect=True)
async def test_nothing_is_recorded_when_off(db: TestDb, ingest: tuple[Ingest, ManualClock]) -> None:
    ing, _clock = ingest
    ing.add_book(book(T0, 10_510))
    ing.add_quote(SYM, quote(SYM, 10_550, 2000))
    await ing.flush()
    master, pool = await _master(db, None)
    try:
        await master.load(_fetch, "test")
        await master.note_quote(SYM, designated(quote(SYM, 70_000, 10), "51", "01"))
    finally:
        await pool.close()
    assert counts(db) == dict.fromkeys(RECORDED, 0)
    assert rows(db, "SELECT designation FROM market.symbols WHERE symbol = '005930'") == [{"designation": "51"}]


async def _fetch() -> list[SymbolInfo]:
    return [SymbolInfo(SYM, "삼성전자", Market.KOSPI, 70_000, 71_000, 69_000, prev_volume=12_345_678),
            SymbolInfo("000660", "SK하이닉스", Market.KOSPI, 120_000, designation="53", warn_code="02")]


async def test_the_days_master_and_designation_changes_are_recorded(db: TestDb) -> None:
    master, pool = await _master(db, "paper")
    try:
        await master.load(_fetch, "test")
        await master.load(_fetch, "test")  # a restart the same day: the same rows, written once
        await master.note_quote(SYM, designated(quote(SYM, 70_000, 10, base=70_000), "51", "01"))
        await master.note_quote(SYM, designated(quote(SYM, 70_000, 10, base=70_000, halted=True), "51", "01"))
        await master.note_quote("091990", quote("091990", 50_000, 10, base=50_000))  # learnt from its quote
    finally:
        await pool.close()
    days = {r["symbol"]: r for r in rows(db, "SELECT * FROM market.symbol_days")}
    assert set(days) == {SYM, "000660", "091990"}
    s = days[SYM]
    assert (s["trade_date"], s["name"], s["market"], s["base_price"], s["upper_limit"], s["lower_limit"],
            s["prev_high"], s["prev_low"], s["prev_volume"], s["halted"], s["designation"], s["source"]) == (
        T0.date(), "삼성전자", "KOSPI", 70_000, 91_000, 49_000, 71_000, 69_000, 12_345_678, False, None, "paper")
    assert (days["000660"]["designation"], days["000660"]["warn_code"]) == ("53", "02")
    assert (days["091990"]["name"], days["091990"]["base_price"]) == ("091990", 50_000)
    # the halt alone is no designation change: one row, at the quote's time
    assert rows(db, "SELECT symbol, ts, designation, warn_code, liquidation_trading "
                    "FROM market.designation_history") == [
        {"symbol": SYM, "ts": T0, "designation": "51", "warn_code": "01", "liquidation_trading": False}]
