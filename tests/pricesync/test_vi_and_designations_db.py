"""PriceSync on a real database, as sm_pricesync: VI states from prints and quotes into
market.vi_state (every change into market.vi_history), designations from quotes and the symbol
master into market.symbols."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal as D
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from stock_manager.services.pricesync.freshness import WsHealth
from stock_manager.services.pricesync.ingest import Ingest, IngestConfig, trade_dates_ahead
from stock_manager.services.pricesync.master import SymbolMaster
from stock_manager.services.pricesync.report import Reporter
from stock_manager.services.pricesync.symbols import parse_sim_symbols
from stock_manager.shared.clock import KST, ManualClock
from stock_manager.shared.db.pool import open_pool
from stock_manager.shared.kis.models import Level, Quote
from stock_manager.shared.kis.ws_frames import OrderBook, Trade, parse_trade
from stock_manager.shared.market_status import WARN_CODES, ViState
from tests.support.pg import TestDb

from .helpers import quote, trade_fields

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=KST)
SYM = "005930"


def rows(db: TestDb, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(db.admin_url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def vi_print(at: datetime, price: int, *, hour: str = "0", reference: int | None = 10_000, qty: int = 10,
             cum: int = 1000) -> Trade:
    f = trade_fields(SYM, at, price, qty, cum)
    f[43] = hour
    f[45] = str(reference) if reference is not None else ""
    return parse_trade(f)


def vi_quote(price: int, vi: str, *, status: str = "55", warn: str = "00", sltr: bool = False) -> Quote:
    q = quote(SYM, price, 1000)
    return dataclasses.replace(q, vi_cls_code=vi, status_code=status, mrkt_warn_cls_code=warn,
                               liquidation_trading=sltr)


def book(at: datetime, hour: str) -> OrderBook:
    asks = tuple(Level(10_500 + 10 * i, 100) for i in range(10))
    bids = tuple(Level(10_490 - 10 * i, 100) for i in range(10))
    return OrderBook(SYM, at.timetz().replace(tzinfo=None), hour, asks, bids, 1000, 1000, 0, 0, 0, 0, 0, 0, "3",
                     D(0), 0, 0, 0)


@pytest.fixture
async def ingest(db: TestDb) -> AsyncIterator[tuple[Ingest, ManualClock]]:
    clock = ManualClock(T0)
    ing = Ingest(db.url("pricesync"), clock, ws_health=lambda: WsHealth(True, frozenset({SYM}), 0.5),
                 config=IngestConfig(batch_window_s=0.01))
    await ing.ensure_days(*trade_dates_ahead(clock.now()))
    try:
        yield ing, clock
    finally:
        await ing._drop_connection()


def test_the_vocabularies_are_the_databases(db: TestDb) -> None:
    checks = {r["conname"]: r["def"] for r in rows(db, """
        SELECT conrelid::regclass::text || '.' || conname AS conname, pg_get_constraintdef(oid) AS def
          FROM pg_constraint WHERE contype = 'c' AND conrelid IN ('market.vi_state'::regclass,
                                                                  'market.vi_history'::regclass,
                                                                  'market.symbols'::regclass)""")}
    for table in ("market.vi_state", "market.vi_history"):
        (state,) = [d for n, d in checks.items() if n.startswith(table) and "state" in d]
        assert set(re.findall(r"'([A-Z]+)'::text", state)) == set(ViState)
    (warn,) = [d for d in checks.values() if "warn_code" in d]
    assert set(re.findall(r"'(\d\d)'::text", warn)) == set(WARN_CODES)


async def test_vi_states_from_prints_and_quotes(db: TestDb, ingest: tuple[Ingest, ManualClock]) -> None:
    ing, clock = ingest
    ing.add_trade(vi_print(T0, 10_500))  # trading normally, the static VI's reference is the open
    await ing.flush()
    ing.add_trade(vi_print(T0 + timedelta(seconds=1), 10_500))  # the same again: nothing to write
    await ing.flush()
    (st,) = rows(db, "SELECT * FROM market.vi_state")
    assert (st["state"], st["reference"], st["since"], st["source"]) == ("NONE", 10_000, T0, "WS")

    start = T0 + timedelta(minutes=5)
    ing.add_trade(vi_print(start, 11_000, hour="C", qty=0))  # the stream: a VI auction runs, this is its indication
    await ing.flush()
    (st,) = rows(db, "SELECT * FROM market.vi_state")
    assert (st["state"], st["since"]) == ("AUCTION", start)
    # an indicative record is no trade: no tick, and the published price is still the last trade's
    assert rows(db, "SELECT count(*) AS n FROM market.ticks") == [{"n": 2}]  # the two prints before it
    assert rows(db, "SELECT price FROM market.prices_best") == [{"price": 10_500}]
    clock.set(start + timedelta(seconds=20))
    ing.add_quote(SYM, vi_quote(11_000, "1"))  # the quote names it: static; the VI began when it began
    await ing.flush()
    (st,) = rows(db, "SELECT * FROM market.vi_state")
    assert (st["state"], st["reference"], st["since"], st["source"]) == ("STATIC", 10_000, start, "REST")
    ing.add_trade(vi_print(start + timedelta(seconds=30), 11_020, hour="C", qty=0))  # still in it: nothing new
    await ing.flush()
    assert rows(db, "SELECT state FROM market.vi_state") == [{"state": "STATIC"}]

    end = start + timedelta(minutes=2)
    ing.add_trade(vi_print(end, 11_050, hour="0", reference=11_000))  # traded again, from a new reference
    await ing.flush()
    (st,) = rows(db, "SELECT * FROM market.vi_state")
    assert (st["state"], st["reference"], st["since"]) == ("NONE", 11_000, end)
    history = rows(db, "SELECT state, reference, source, ts FROM market.vi_history ORDER BY id")
    assert [(h["state"], h["reference"], h["source"]) for h in history] == [
        ("NONE", 10_000, "WS"), ("AUCTION", 10_000, "WS"), ("STATIC", 10_000, "REST"), ("NONE", 11_000, "WS")]


async def test_the_order_book_says_when_a_vi_auction_runs(db: TestDb, ingest: tuple[Ingest, ManualClock]) -> None:
    """No trade prints during a VI, but the book keeps coming, with HOUR_CLS_CODE C."""
    ing, clock = ingest
    ing.add_trade(vi_print(T0, 10_500))
    ing.add_book(book(T0, "0"))
    await ing.flush()
    start = T0 + timedelta(minutes=2)
    clock.set(start)
    ing.add_book(book(start, "C"))
    await ing.flush()
    assert rows(db, "SELECT state, reference, since FROM market.vi_state") == [
        {"state": "AUCTION", "reference": 10_000, "since": start}]
    end = start + timedelta(minutes=2, seconds=10)
    clock.set(end)
    ing.add_book(book(end, "0"))
    ing.add_trade(vi_print(end, 10_600))  # the uncross and trading again (a dynamic VI: the same reference)
    await ing.flush()
    assert rows(db, "SELECT state, since FROM market.vi_state") == [{"state": "NONE", "since": end}]
    assert [r["state"] for r in rows(db, "SELECT state FROM market.vi_history ORDER BY id")] == [
        "NONE", "AUCTION", "NONE"]


async def test_the_stream_ends_a_vi_a_quote_began(db: TestDb, ingest: tuple[Ingest, ManualClock]) -> None:
    ing, clock = ingest
    ing.add_trade(vi_print(T0, 10_500))
    await ing.flush()
    clock.set(T0 + timedelta(minutes=1))
    ing.add_quote(SYM, vi_quote(10_500, "Y"))  # a verifying poll of the quiet stream finds a VI
    await ing.flush()
    assert rows(db, "SELECT state FROM market.vi_state") == [{"state": "AUCTION"}]
    ing.add_trade(vi_print(T0 + timedelta(minutes=3), 10_550))  # the same codes as before the VI: it is over
    await ing.flush()
    assert rows(db, "SELECT state FROM market.vi_state") == [{"state": "NONE"}]


async def test_a_polled_symbol_gets_its_vi_from_quotes_alone(db: TestDb, ingest: tuple[Ingest, ManualClock]) -> None:
    ing, clock = ingest
    ing.add_quote(SYM, vi_quote(10_100, "N"))  # no VI and no reference known: no row says more
    await ing.flush()
    assert rows(db, "SELECT * FROM market.vi_state") == []
    clock.set(T0 + timedelta(minutes=1))
    ing.add_quote(SYM, vi_quote(10_400, "2"))
    await ing.flush()
    (st,) = rows(db, "SELECT * FROM market.vi_state")
    assert (st["state"], st["reference"], st["since"], st["source"]) == ("DYNAMIC", None, clock.now(), "REST")
    ing.add_quote(SYM, vi_quote(10_400, "Y"))  # KIS's Y says a VI, not which: the one known stands
    await ing.flush()
    assert rows(db, "SELECT state FROM market.vi_state") == [{"state": "DYNAMIC"}]
    clock.set(T0 + timedelta(minutes=3))
    ing.add_quote(SYM, vi_quote(10_400, "N"))
    await ing.flush()
    assert rows(db, "SELECT state, since FROM market.vi_state") == [{"state": "NONE", "since": clock.now()}]
    clock.set(T0 + timedelta(minutes=9))
    ing.add_quote(SYM, vi_quote(10_900, "Y"))
    await ing.flush()
    assert rows(db, "SELECT state, since FROM market.vi_state") == [{"state": "AUCTION", "since": clock.now()}]
    assert len(rows(db, "SELECT 1 FROM market.vi_history")) == 3


async def test_a_new_trade_date_starts_without_yesterdays_vi(db: TestDb, ingest: tuple[Ingest, ManualClock]) -> None:
    ing, clock = ingest
    ing.add_trade(vi_print(T0, 10_500, hour="C"))
    await ing.flush()
    tomorrow = T0 + timedelta(days=1)
    clock.set(tomorrow)
    await ing.ensure_days(*trade_dates_ahead(tomorrow))
    ing.add_trade(vi_print(tomorrow, 10_500, hour="C"))  # the same print a day later is news
    await ing.flush()
    assert rows(db, "SELECT state, since FROM market.vi_state") == [{"state": "AUCTION", "since": tomorrow}]


async def test_designations_from_quotes(db: TestDb) -> None:
    pool = await open_pool(db.url("pricesync"), max_size=2)

    async def emit(kind: str, message: str = "", **kw: Any) -> None:
        return None

    report = Reporter(emit)
    master = SymbolMaster(pool, ManualClock(T0), report)
    try:
        await master.note_quote(SYM, vi_quote(10_000, "N", status="51", warn="02"))  # learnt from its quote
        await master.refresh()
        (s,) = rows(db, "SELECT * FROM market.symbols")
        assert (s["designation"], s["warn_code"], s["liquidation_trading"], s["halted"]) == ("51", "02", False,
                                                                                               False)
        assert not master.changed(SYM, vi_quote(10_000, "N", status="51", warn="02"))
        later = vi_quote(10_000, "N", status="55", warn="00", sltr=True)  # 관리 lifted, 정리매매 begins
        assert master.changed(SYM, later)
        await master.note_quote(SYM, later)
        await master.note_quote(SYM, vi_quote(10_000, "N", status="58", warn="00", sltr=True))  # then halted
        (s,) = rows(db, "SELECT * FROM market.symbols")
        assert (s["designation"], s["warn_code"], s["liquidation_trading"], s["halted"]) == ("58", "00", True, True)
        posted = [kind for kind, _, _ in report._queue]
        assert posted == ["SymbolDesignationChanged", "SymbolHalted", "SymbolDesignationChanged"]
    finally:
        await pool.close()


def test_the_simulators_master_carries_designations() -> None:
    (a, b, c) = parse_sim_symbols({"symbols": [
        {"symbol": "005930", "name": "삼성전자", "market": "KOSPI", "base_price": 70_000},
        {"symbol": "000660", "name": "SK하이닉스", "market": "KOSPI", "base_price": 120_000,
         "iscd_stat_cls_code": "53", "mrkt_warn_cls_code": "02", "sltr_yn": "N"},
        {"symbol": "035720", "name": "카카오", "market": "KOSPI", "base_price": 40_000,
         "iscd_stat_cls_code": "58", "sltr_yn": "Y"}]})
    assert (a.designation, a.warn_code, a.liquidation_trading, a.halted) == (None, None, False, False)
    assert (b.designation, b.warn_code, b.liquidation_trading, b.halted) == ("53", "02", False, False)
    assert (c.designation, c.liquidation_trading, c.halted) == ("58", True, True)
