"""``stock-manager export-day DATE --out FILE`` and ``import-day FILE [--replace]`` (issue #14).

A day is one KST trade date of what PriceSync recorded (``market.ticks``, ``books``, ``quotes``,
``symbol_days``, ``vi_history``, ``designation_history``), written as a day file
(``stock_manager.shared.dayfile``: Parquet tables in a zip) and loaded back into the same tables.
Export falls back to ``market.symbols`` for a day without ``symbol_days`` rows and says so in the
file's meta.  Import is one transaction: it refuses a day that has rows already unless
``--replace``, which deletes them first; a file that is not a day file, or whose rows the schema
refuses, is one line and exit 2, with nothing written.

What a day file does not hold comes back as a stand-in: a print's receive time and a book's are its
market time, a VI change's source is ``WS``, and ``cum_turnover`` is NULL.
"""

from __future__ import annotations

import argparse
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from stock_manager.shared import dayfile
from stock_manager.shared.clock import KST
from stock_manager.shared.db.pool import connect
from stock_manager.shared.resources import package_path
from stock_manager.shared.settings import Mode
from stock_manager.shared.sql import load_queries

Q = load_queries(package_path(__package__, "sql", "dayfile.sql"))

# market.symbol_days.source (migration 0026 holds the same): the modes, and the synthetic market
SOURCES: Final = (*(m.value for m in Mode), "synthetic")
# rows per fetch on export: bounded memory per round trip, few round trips
FETCH: Final = 50_000

_TICK_TYPES: Final = ["timestamptz", "text", "numeric", "int8", "int2", "int8", "text", "timestamptz"]
_BOOK_TYPES: Final = ["timestamptz", "text", "int8[]", "int8[]", "int8[]", "int8[]", "text", "timestamptz"]
_QUOTE_TYPES: Final = ["timestamptz", "timestamptz", "text", *["int8"] * 9]
_SYMBOL_TYPES: Final = ["date", "text", "text", "text", *["int8"] * 6, "bool", "text", "text", "bool", "bool", "text"]
_VI_TYPES: Final = ["timestamptz", "text", "text", "int8", "text", "timestamptz"]
_DESIGNATION_TYPES: Final = ["timestamptz", "text", "text", "text", "bool", "timestamptz"]


class ImportRefused(Exception):
    """The day has rows already and ``--replace`` was not given."""


def add_arguments(export: argparse.ArgumentParser, imp: argparse.ArgumentParser) -> None:
    export.add_argument("day", type=date.fromisoformat, metavar="DATE", help="the KST trade date, YYYY-MM-DD")
    export.add_argument("--out", type=Path, required=True, metavar="FILE")
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--replace", action="store_true", help="delete the day's rows first (same transaction)")


def day_bounds(day: date) -> dict[str, Any]:
    lo = datetime.combine(day, time(0), KST)
    return {"day": day, "lo": lo, "hi": lo + timedelta(days=1)}


# --- export ---------------------------------------------------------------------------------------


async def _table(conn: AsyncConnection[Any], name: str, query: str, params: dict[str, Any]) -> pa.Table:
    """The query's rows as the day file's table ``name`` (columns in the schema's order)."""
    schema = dayfile.SCHEMAS[name]
    batches: list[pa.RecordBatch] = []
    async with conn.cursor(name=f"export_{name}", row_factory=tuple_row) as cur:
        await cur.execute(query, params)
        while rows := await cur.fetchmany(FETCH):
            columns = list(zip(*rows, strict=True))
            batches.append(pa.RecordBatch.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema,
                                                                                                  strict=True)],
                                                      schema=schema))
    return pa.Table.from_batches(batches, schema=schema)


async def read_db_day(url: str, day: date) -> dayfile.Day:
    """The day as the database holds it (one repeatable-read snapshot, so the tables agree)."""
    params = day_bounds(day)
    async with await connect(url, autocommit=False) as conn:
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        await conn.set_read_only(True)
        tables = {name: await _table(conn, name, Q[f"day_{name}"], params)
                  for name in ("symbols", "trades", "books", "quotes", "events")}
        meta: dict[str, Any] = {"symbols_from": "market.symbol_days"}
        if tables["symbols"].num_rows == 0:
            tables["symbols"] = await _table(conn, "symbols", Q["listed_symbols"], params)
            meta["symbols_from"] = "market.symbols (no market.symbol_days rows for the day: today's master)"
        row = await (await conn.execute(Q["day_source"], params)).fetchone()
        await conn.rollback()
    source = str(row["source"]) if row else "paper"
    if row is None:
        meta["source_note"] = "the recording mode is not known: paper assumed"
    return dayfile.Day(trade_date=day, source=source, tables=tables, meta=meta)


async def export_day(url: str, day: date, out: Path) -> dayfile.Day:
    d = await read_db_day(url, day)
    dayfile.write_day(out, d)
    return d


# --- import ---------------------------------------------------------------------------------------


def _rows(t: pa.Table) -> Iterable[tuple[Any, ...]]:
    """The table's rows as tuples, a batch of Python objects at a time (a whole day's books as Python
    lists would take gigabytes)."""
    for batch in t.to_batches(max_chunksize=FETCH):
        yield from zip(*(c.to_pylist() for c in batch.columns), strict=True)


def check_day(d: dayfile.Day) -> None:
    """Every timed row on the file's trade date, every source and kind one the database knows."""
    bounds = day_bounds(d.trade_date)
    for name in ("trades", "books", "quotes", "events"):
        t = d[name]
        if t.num_rows == 0:
            continue
        lo, hi = pc.min(t["ts"]).as_py(), pc.max(t["ts"]).as_py()
        if lo is None or lo < bounds["lo"] or hi >= bounds["hi"]:
            raise dayfile.DayFileError(f"table {name}: rows outside {d.trade_date} KST ({lo} .. {hi})")
    kinds = set(pc.unique(d["events"]["kind"]).to_pylist()) - {"VI", "DESIGNATION"}
    if kinds:
        raise dayfile.DayFileError(f"table events: unknown kind(s) {', '.join(map(str, sorted(kinds)))}")
    if d.source not in SOURCES:
        raise dayfile.DayFileError(f"meta.json: source {d.source!r} is none of {', '.join(SOURCES)}")


async def _copy(conn: AsyncConnection[Any], statement: str, types: Sequence[str],
                rows: Iterable[Sequence[Any]]) -> None:
    async with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(list(types))
        for row in rows:
            await copy.write_row(row)


async def load_day(url: str, d: dayfile.Day, *, replace: bool = False) -> None:
    """Write ``d`` into the database in one transaction (ImportRefused, DayFileError: nothing written)."""
    check_day(d)
    params = day_bounds(d.trade_date)
    async with await connect(url, autocommit=False) as conn:
        try:
            await conn.execute(Q["lock_days"])
            present = [r["name"] for r in await (await conn.execute(Q["day_rows"], params)).fetchall()]
            if present and not replace:
                raise ImportRefused(f"{d.trade_date} has rows already in {', '.join(present)}; "
                                    "--replace deletes them first")
            for table in ("ticks", "books", "quotes", "symbol_days", "vi_history", "designation_history"):
                await conn.execute(Q[f"delete_{table}"], params)
            await conn.execute(Q["ensure_tick_partition"], params)
            await _write_tables(conn, d)
            await conn.commit()
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as e:
            await conn.rollback()
            raise dayfile.DayFileError(f"the database refused a row: {str(e).splitlines()[0]}") from None


async def _write_tables(conn: AsyncConnection[Any], d: dayfile.Day) -> None:
    await _copy(conn, Q["copy_ticks"], _TICK_TYPES, ((t, s, p, q, side, cum, "REST" if side is None else "WS", t)
                                                     for t, s, p, q, side, cum in _rows(d["trades"])))
    await _copy(conn, Q["copy_books"], _BOOK_TYPES, ((*row, row[0]) for row in _rows(d["books"])))
    await _copy(conn, Q["copy_quotes"], _QUOTE_TYPES, _rows(d["quotes"]))
    await _copy(conn, Q["copy_symbol_days"], _SYMBOL_TYPES,
                ((d.trade_date, *row, d.source) for row in _rows(d["symbols"])))
    events = d["events"]
    vi = events.filter(pc.equal(events["kind"], "VI"))
    await _copy(conn, Q["copy_vi_history"], _VI_TYPES,
                ((t, s, state, ref, "WS", t) for t, s, _, state, ref, _, _ in _rows(vi)))
    designations = events.filter(pc.equal(events["kind"], "DESIGNATION"))
    await _copy(conn, Q["copy_designation_history"], _DESIGNATION_TYPES,
                ((t, s, state, warn, bool(liq), t) for t, s, _, state, _, warn, liq in _rows(designations)))


async def import_day(url: str, path: Path, *, replace: bool = False) -> dayfile.Day:
    """Load the day file at ``path``; DayFileError naming the file when it is not one this version reads."""
    try:
        d = dayfile.read_day(path)
    except (pa.ArrowException, zipfile.BadZipFile, OSError) as e:  # a zip that opens but whose parts are garbled
        raise dayfile.DayFileError(f"{path}: not a readable day file ({type(e).__name__}: {e})") from None
    try:
        await load_day(url, d, replace=replace)
    except dayfile.DayFileError as e:
        raise dayfile.DayFileError(f"{path}: {e}") from None
    return d


# --- the commands ---------------------------------------------------------------------------------


def _counts(d: dayfile.Day) -> str:
    c = d.counts()
    return ", ".join(f"{c[name]} {name}" for name in dayfile.TABLES)


def _size(path: Path) -> str:
    n = path.stat().st_size
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


async def run_export(args: argparse.Namespace, url: str) -> int:
    try:
        d = await export_day(url, args.day, args.out)
    except OSError as e:
        print(f"stock-manager: cannot write {args.out}: {e.strerror or e}")
        return 2
    print(f"{args.day} ({d.source}): {_counts(d)} -> {args.out} ({_size(args.out)})")
    return 0


async def run_import(args: argparse.Namespace, url: str) -> int:
    try:
        d = await import_day(url, args.file, replace=args.replace)
    except dayfile.DayFileError as e:
        print(f"stock-manager: {e}")
        return 2
    except ImportRefused as e:
        print(f"stock-manager: {e}")
        return 1
    print(f"{d.trade_date} ({d.source}): {_counts(d)} imported from {args.file}"
          f"{' (the day replaced)' if args.replace else ''}")
    return 0
