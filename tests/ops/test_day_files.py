"""export-day and import-day on real databases (issue #14): a day seeded into market.* comes out as a
day file with every row, goes into a second fresh database and comes out again the same; an import
over a day that has rows is refused unless --replace; a garbled file is one line, exit 2, nothing
written."""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stock_manager import cli
from stock_manager.dayfile_cmd import SOURCES, export_day
from stock_manager.shared import dayfile
from stock_manager.shared.clock import KST
from tests.support.clone import seeded_clone
from tests.support.pg import PgServer, TestDb

DAY = date(2026, 11, 23)
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=KST)
TABLES = ("market.ticks", "market.books", "market.quotes", "market.symbol_days", "market.vi_history",
          "market.designation_history")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def seed(url: str) -> None:
    """A small recorded day, plus a print of the day after (which the export must leave out)."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT market.ensure_tick_partition(%s)", (DAY,))
        ticks = [("005930", at(0), 70_000, 100, 3, 100), ("005930", at(0), 70_100, 5, 1, 105),
                 ("005930", at(1.5), 70_000, 7, 5, 112), ("000660", at(2), 120_000, 3, 1, 3),
                 ("000660", at(60), 120_500, 4, None, 7), ("005930", at(86_400), 71_000, 1, 1, 1)]
        conn.cursor().executemany(
            "INSERT INTO market.ticks (symbol, ts, price, qty, side, cum_volume, source) VALUES (%s, %s, %s, %s, %s, "
            "%s, CASE WHEN %s::smallint IS NULL THEN 'REST' ELSE 'WS' END)", [(*t, t[4]) for t in ticks])
        levels = list(range(10))
        conn.cursor().executemany(
            "INSERT INTO market.books (ts, symbol, ask_prices, ask_qtys, bid_prices, bid_qtys, hour_cls_code, "
            "received_ts) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(at(s), "005930", [70_100 + 100 * i for i in levels], [10 + i for i in levels],
              [70_000 - 100 * i for i in levels], [20 + i for i in levels], code, at(s + 0.01))
             for s, code in ((0, "0"), (1, "0"), (300, "C"))])
        conn.execute("INSERT INTO market.quotes (ts, received_ts, symbol, price, volume, open, high, low) "
                     "VALUES (%s, %s, '035720', 41500, 900, 41000, 41800, 40900)", (at(30), at(30)))
        conn.execute(
            "INSERT INTO market.symbol_days (trade_date, symbol, name, market, base_price, upper_limit, lower_limit, "
            "prev_high, prev_low, prev_volume, halted, designation, warn_code, liquidation_trading, kospi200, source) "
            "VALUES (%(d)s, '005930', '삼성전자', 'KOSPI', 70000, 91000, 49000, 71000, 69000, 12345678, false, NULL, "
            "'00', false, true, 'paper'), (%(d)s, '000660', 'SK하이닉스', 'KOSPI', 120000, 156000, 84000, NULL, NULL, "
            "NULL, false, '53', '02', false, NULL, 'paper'), (%(d)s, '035720', '카카오', 'KOSPI', 41000, 53300, "
            "28700, NULL, NULL, NULL, true, '58', NULL, true, NULL, 'paper')", {"d": DAY})
        conn.execute("INSERT INTO market.vi_history (symbol, state, reference, source, ts) VALUES "
                     "('005930', 'STATIC', 70000, 'WS', %s), ('005930', 'NONE', 77000, 'REST', %s)",
                     (at(300), at(420)))
        conn.execute("INSERT INTO market.designation_history (symbol, ts, designation, warn_code, "
                     "liquidation_trading) VALUES ('000660', %s, '54', '01', false)", (at(600),))


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


def command(monkeypatch: pytest.MonkeyPatch, url: str, *argv: str) -> int:
    monkeypatch.setenv("DATABASE_URL", url)
    return cli.main(list(argv))


@pytest.fixture
def second_db(pg_server: PgServer, template_db: str) -> Iterator[TestDb]:
    """Another fresh database, the one a day file is carried to."""
    with seeded_clone(pg_server, template_db, lambda url: None) as other:
        yield other


def rows(day: dayfile.Day, name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = day[name].to_pylist()
    return out


def exported(db: TestDb, monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    """The seeded day of ``db``, exported to ``path``."""
    seed(db.admin_url)
    assert command(monkeypatch, db.admin_url, "export-day", DAY.isoformat(), "--out", str(path)) == 0
    return path


def test_a_seeded_day_comes_out_whole_and_goes_back_the_same(db: TestDb, second_db: TestDb, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    first, again = exported(db, monkeypatch, tmp_path / "day.zip"), tmp_path / "again.zip"
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith("2026-11-23 (paper): 3 symbols, 5 trades, 3 books, 1 quotes, 3 events -> ")
    assert out[0].endswith(" kB)")

    d = dayfile.read_day(first)
    assert (d.trade_date, d.source, d.meta["symbols_from"]) == (DAY, "paper", "market.symbol_days")
    assert [(r["symbol"], r["base_price"], r["designation"], r["halted"], r["kospi200"], r["prev_volume"])
            for r in rows(d, "symbols")] == [
        ("000660", 120_000, "53", False, None, None), ("005930", 70_000, None, False, True, 12_345_678),
        ("035720", 41_000, "58", True, None, None)]
    assert rows(d, "symbols")[1] == {
        "symbol": "005930", "name": "삼성전자", "market": "KOSPI", "base_price": 70_000, "upper_limit": 91_000,
        "lower_limit": 49_000, "prev_high": 71_000, "prev_low": 69_000, "prev_volume": 12_345_678, "halted": False,
        "designation": None, "warn_code": "00", "liquidation_trading": False, "kospi200": True}
    assert [(r["ts"], r["symbol"], r["price"], r["qty"], r["side"], r["cum_volume"]) for r in rows(d, "trades")] == [
        (at(0), "005930", 70_000, 100, 3, 100), (at(0), "005930", 70_100, 5, 1, 105),
        (at(1.5), "005930", 70_000, 7, 5, 112), (at(2), "000660", 120_000, 3, 1, 3),
        (at(60), "000660", 120_500, 4, None, 7)]
    books = rows(d, "books")
    assert [(b["ts"], b["hour_cls_code"]) for b in books] == [(at(0), "0"), (at(1), "0"), (at(300), "C")]
    assert books[0]["ask_prices"] == [70_100 + 100 * i for i in range(10)]
    assert books[0]["bid_qtys"] == [20 + i for i in range(10)]
    assert rows(d, "quotes") == [{"ts": at(30), "received_ts": at(30), "symbol": "035720", "price": 41_500,
                                  "bid": None, "ask": None, "bid_qty": None, "ask_qty": None, "volume": 900,
                                  "open": 41_000, "high": 41_800, "low": 40_900}]
    assert rows(d, "events") == [
        {"ts": at(300), "symbol": "005930", "kind": "VI", "state": "STATIC", "reference": 70_000, "warn_code": None,
         "liquidation_trading": None},
        {"ts": at(420), "symbol": "005930", "kind": "VI", "state": "NONE", "reference": 77_000, "warn_code": None,
         "liquidation_trading": None},
        {"ts": at(600), "symbol": "000660", "kind": "DESIGNATION", "state": "54", "reference": None,
         "warn_code": "01", "liquidation_trading": False}]

    assert command(monkeypatch, second_db.admin_url, "import-day", str(first)) == 0
    assert capsys.readouterr().out.startswith("2026-11-23 (paper): 3 symbols, 5 trades, 3 books, 1 quotes, 3 events "
                                              "imported from ")
    assert command(monkeypatch, second_db.admin_url, "export-day", DAY.isoformat(), "--out", str(again)) == 0
    e = dayfile.read_day(again)
    assert (e.trade_date, e.source) == (d.trade_date, d.source)
    for name in dayfile.TABLES:
        assert e[name].equals(d[name]), name


def test_a_second_import_is_refused_and_replace_replaces(db: TestDb, second_db: TestDb, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = exported(db, monkeypatch, tmp_path / "day.zip")
    assert command(monkeypatch, second_db.admin_url, "import-day", str(path)) == 0
    imported = counts(second_db.admin_url)
    capsys.readouterr()
    assert command(monkeypatch, second_db.admin_url, "import-day", str(path)) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert "2026-11-23 has rows already in market.ticks" in out[0]
    assert "--replace" in out[0]
    assert counts(second_db.admin_url) == imported
    assert command(monkeypatch, second_db.admin_url, "import-day", str(path), "--replace") == 0
    assert counts(second_db.admin_url) == imported
    # --replace over the original: its day is the file's again, and the day after is left alone
    with psycopg.connect(db.admin_url) as conn:
        conn.execute("INSERT INTO market.quotes (ts, received_ts, symbol, price) VALUES (%s, %s, '035720', 1)",
                     (at(40), at(40)))
    before = counts(db.admin_url)
    assert command(monkeypatch, db.admin_url, "import-day", str(path), "--replace") == 0
    assert counts(db.admin_url) == {**before, "market.quotes": before["market.quotes"] - 1}
    with psycopg.connect(db.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM market.ticks WHERE ts >= %s", (at(86_400),)).fetchone() == (1,)


def _garbled(tmp_path: Path, good: Path) -> list[Path]:
    missing = tmp_path / "missing.zip"
    text = tmp_path / "text.zip"
    text.write_text("not a zip at all")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    wrong_version = tmp_path / "v99.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(wrong_version, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "meta.json":
                data = data.replace(b'"version": 1', b'"version": 99')
            dst.writestr(item, data)
    bad_parquet = tmp_path / "bad_parquet.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad_parquet, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, b"PAR1 garbage" if item.filename == "trades.parquet" else data)
    return [missing, text, truncated, wrong_version, bad_parquet]


def test_a_garbled_file_is_one_line_exit_2_and_nothing_written(db: TestDb, second_db: TestDb, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    good = exported(db, monkeypatch, tmp_path / "day.zip")
    capsys.readouterr()

    def refused(path: Path) -> str:
        assert command(monkeypatch, second_db.admin_url, "import-day", str(path)) == 2, path
        out = capsys.readouterr().out.strip().splitlines()
        assert len(out) == 1, out
        assert out[0].startswith(f"stock-manager: {path}: "), out[0]
        return out[0]

    said = {path.name: refused(path) for path in _garbled(tmp_path, good)}
    assert "no such file" in said["missing.zip"]
    assert "version 99" in said["v99.zip"]
    # a row outside the file's day, and one the schema refuses: refused before or inside the transaction
    d = dayfile.read_day(good)
    late = [*d["trades"].to_pylist(),
            {"ts": at(86_400), "symbol": "005930", "price": 1, "qty": 1, "side": 1, "cum_volume": 1}]
    bad_symbol = [*d["symbols"].to_pylist(), {**d["symbols"].to_pylist()[0], "symbol": "bad"}]
    for name, table in (("trades", late), ("symbols", bad_symbol)):
        path = tmp_path / f"bad_{name}.zip"
        dayfile.write_day(path, dayfile.Day(DAY, "paper", {**d.tables, name: dayfile.table(name, table)}))
        refused(path)
    assert counts(second_db.admin_url) == dict.fromkeys(TABLES, 0)


def test_a_day_without_its_master_falls_back_to_the_symbols(db: TestDb, tmp_path: Path) -> None:
    with psycopg.connect(db.admin_url) as conn:
        conn.execute("INSERT INTO market.symbols (symbol, name, market, base_price) VALUES "
                     "('005930', '삼성전자', 'KOSPI', 70000)")
    d = asyncio.run(export_day(db.admin_url, DAY, tmp_path / "day.zip"))
    assert d.source == "paper"
    assert d.meta["symbols_from"].startswith("market.symbols")
    assert [r["symbol"] for r in rows(dayfile.read_day(tmp_path / "day.zip"), "symbols")] == ["005930"]


def test_the_sources_are_the_databases(db: TestDb) -> None:
    with psycopg.connect(db.admin_url) as conn:
        (check,) = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
                                "'market.symbol_days'::regclass AND pg_get_constraintdef(oid) LIKE '%%source%%'"
                                ).fetchone() or ("",)
    assert all(f"'{s}'" in check for s in SOURCES)
