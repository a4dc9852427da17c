"""A recorded trading day as one portable file: Parquet tables in a zip (issue #14).

What the file holds is what a replay needs, as PriceSync saw it (paper or live) or as the
synthetic market made it:

``symbols``  the day's symbol master and base prices, one row per symbol
``trades``   every trade print (H0STCNT0, and REST quotes' volume where nothing streamed)
``books``    order-book snapshots (H0STASP0): ten levels a side, best first
``quotes``   REST-polled quotes (inquire-price) with the market time they describe
``events``   VI and designation changes

The container is a zip with ``meta.json`` and one ``<table>.parquet`` each, stored uncompressed
(Parquet's own zstd does the compressing), so any zip and Parquet reader opens it.  Times are
UTC microseconds (``timestamp[us, tz=UTC]``); prices and quantities are integers (KRW, shares).
``FORMAT_VERSION`` changes whenever a column does; a reader refuses a version it does not know.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

FORMAT: Final = "stock-manager-day"
FORMAT_VERSION: Final = 1
TS: Final = pa.timestamp("us", tz="UTC")
PRICES: Final = pa.list_(pa.int64())

SCHEMAS: Final[dict[str, pa.Schema]] = {
    "symbols": pa.schema([
        ("symbol", pa.string()),
        ("name", pa.string()),
        ("market", pa.string()),  # KOSPI | KOSDAQ | KONEX | ETF
        ("base_price", pa.int64()),  # 기준가: the prior close, the daily limits' base
        ("upper_limit", pa.int64()),
        ("lower_limit", pa.int64()),
        ("prev_high", pa.int64()),
        ("prev_low", pa.int64()),
        ("prev_volume", pa.int64()),
        ("halted", pa.bool_()),
        ("designation", pa.string()),  # iscd_stat_cls_code when a designation (51..59), else null
        ("warn_code", pa.string()),  # mrkt_warn_cls_code 00..03
        ("liquidation_trading", pa.bool_()),  # 정리매매
        ("kospi200", pa.bool_()),  # null when not known (its dynamic VI band is 3 %, others 6 %)
    ]),
    "trades": pa.schema([
        ("ts", TS),
        ("symbol", pa.string()),
        ("price", pa.int64()),
        ("qty", pa.int64()),
        ("side", pa.int8()),  # CCLD_DVSN: 1 buy-initiated, 3 the opening call, 5 sell-initiated
        ("cum_volume", pa.int64()),
    ]),
    "books": pa.schema([
        ("ts", TS),
        ("symbol", pa.string()),
        ("ask_prices", PRICES),
        ("ask_qtys", PRICES),
        ("bid_prices", PRICES),
        ("bid_qtys", PRICES),
        ("hour_cls_code", pa.string()),  # H0STASP0 HOUR_CLS_CODE: 0 regular, C a VI auction, ...
    ]),
    "quotes": pa.schema([
        ("ts", TS),  # the market time the quote describes
        ("received_ts", TS),  # when PriceSync had it
        ("symbol", pa.string()),
        ("price", pa.int64()),
        ("bid", pa.int64()),
        ("ask", pa.int64()),
        ("bid_qty", pa.int64()),
        ("ask_qty", pa.int64()),
        ("volume", pa.int64()),  # the day's cumulative volume
        ("open", pa.int64()),
        ("high", pa.int64()),
        ("low", pa.int64()),
    ]),
    "events": pa.schema([
        ("ts", TS),
        ("symbol", pa.string()),
        ("kind", pa.string()),  # VI | DESIGNATION
        ("state", pa.string()),  # VI: NONE STATIC DYNAMIC BOTH AUCTION; DESIGNATION: the code or null
        ("reference", pa.int64()),  # VI: VI_STND_PRC
        ("warn_code", pa.string()),  # DESIGNATION
        ("liquidation_trading", pa.bool_()),  # DESIGNATION
    ]),
}
TABLES: Final = tuple(SCHEMAS)
# rows per Parquet row group: a replay reads a whole table at once, so few and large
ROW_GROUP: Final = 1 << 20


class DayFileError(ValueError):
    """The file is not a day file this version can read; the message says what is wrong."""


@dataclass
class Day:
    """One recorded day; every table has exactly its ``SCHEMAS`` schema."""

    trade_date: date
    source: str  # paper | live | sim | synthetic
    tables: dict[str, pa.Table]
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pa.Table:
        return self.tables[name]

    def counts(self) -> dict[str, int]:
        return {name: self.tables[name].num_rows for name in TABLES}


def empty(name: str) -> pa.Table:
    return SCHEMAS[name].empty_table()


def table(name: str, rows: Mapping[str, Any] | list[dict[str, Any]]) -> pa.Table:
    """A table of ``name``'s schema from columns (a mapping of lists) or from row dicts."""
    schema = SCHEMAS[name]
    if isinstance(rows, list):
        return pa.Table.from_pylist(rows, schema=schema)
    return pa.Table.from_pydict(dict(rows), schema=schema)


def conform(name: str, t: pa.Table) -> pa.Table:
    """``t`` with exactly ``name``'s columns, in order and cast to their types; DayFileError if it cannot."""
    schema = SCHEMAS[name]
    missing = [f.name for f in schema if f.name not in t.column_names]
    if missing:
        raise DayFileError(f"table {name}: missing column(s) {', '.join(missing)}")
    try:
        return t.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise DayFileError(f"table {name}: {e}") from None


def write_day(path: Path, day: Day) -> None:
    """Write ``day`` to ``path`` (replaced whole: written beside it, then renamed)."""
    meta = {
        **day.meta,
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "trade_date": day.trade_date.isoformat(),
        "source": day.source,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": {name: day.tables.get(name, empty(name)).num_rows for name in TABLES},
    }
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("meta.json", json.dumps(meta, ensure_ascii=False, indent=1))
        for name in TABLES:
            t = conform(name, day.tables.get(name, empty(name)))
            if name != "symbols" and t.num_rows:
                t = t.sort_by([("ts", "ascending")])  # a stable sort: prints at one moment keep their order
            buf = io.BytesIO()
            pq.write_table(t, buf, compression="zstd", row_group_size=ROW_GROUP)
            z.writestr(f"{name}.parquet", buf.getvalue())
    tmp.replace(path)


def read_meta(path: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as z:
            meta: dict[str, Any] = json.loads(z.read("meta.json"))
    except FileNotFoundError:
        raise DayFileError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as e:
        raise DayFileError(f"{path}: not a day file ({e})") from None
    if meta.get("format") != FORMAT:
        raise DayFileError(f"{path}: not a day file (format {meta.get('format')!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise DayFileError(f"{path}: day file version {meta.get('version')!r}; this version reads {FORMAT_VERSION}")
    return meta


def read_day(path: Path, tables: tuple[str, ...] = TABLES) -> Day:
    """The day in ``path``; DayFileError naming the file and the problem when it is not one."""
    meta = read_meta(path)
    out: dict[str, pa.Table] = {}
    with zipfile.ZipFile(path) as z:
        for name in tables:
            try:
                raw = z.read(f"{name}.parquet")
            except KeyError:
                raise DayFileError(f"{path}: table {name} is missing") from None
            out[name] = conform(name, pq.read_table(io.BytesIO(raw)))
    try:
        trade_date = date.fromisoformat(str(meta["trade_date"]))
    except (KeyError, ValueError):
        raise DayFileError(f"{path}: meta.json has no valid trade_date") from None
    return Day(trade_date=trade_date, source=str(meta.get("source", "")), tables=out, meta=meta)
