"""The ingest pipeline: parsed prints and polls in, batched writes to ``market.*`` out.

The WebSocket reader hands each parsed record to ``add_trade``/``add_book``/``add_quote``, which
only append to the pending batch (no I/O, no await).  One writer task owns a dedicated connection
and, every ``batch_window_s`` or as soon as the previous write finished (so batches grow with the
load), swaps the pending batch out and writes it in one transaction:

* ``COPY … FROM STDIN (FORMAT BINARY)`` of every tick into ``market.ticks``;
* one multi-row upsert of the latest price per symbol into ``market.prices_best``;
* one merge of the batch's partial one-minute bars into ``market.candles``;
* the freshness verdicts that this batch changed (a new symbol, STALE turning FRESH);
* when recording (``IngestConfig.record``, for replays): ``COPY`` of the batch's order books into
  ``market.books`` and of its inquire-price answers into ``market.quotes``;
* the VI states that changed (``market.vi_state``, each change also in ``market.vi_history``):
  HOUR_CLS_CODE ``C`` on a record or an order book means a VI auction, a record's VI_STND_PRC is
  the static VI's reference, a quote's ``vi_cls_code`` says whether (or which) VI runs.  Only a
  change costs a row, so the hot path compares two values per print and writes nothing; a change
  one source saw makes the others' next word count even if it repeats their last.  An indicative
  record (no volume, HOUR_CLS_CODE A-D: what the auction would uncross at) counts for the VI state
  only, never as a trade or a price.

(Prices and bars reach the server by binary COPY into per-connection staging tables, because
psycopg formats a COPY row in C while parameter arrays are dumped element by element in Python.)
The session commits asynchronously (``prepare_writer``): visibility does not wait for the disk.

Between batches the writer closes finished minutes, turns FRESH verdicts STALE when their source
stops vouching for them (``freshness.judge``), writes the progress of FRESH rows and adds tick
partitions, on the same connection, so all of it is ordered with the data.

Memory is bounded: past ``max_pending`` ticks the reader must wait (``wait_room``), and if the
database stays away longer than ``shed_after_s`` the oldest ticks are dropped and counted; the
latest price per symbol is never dropped.  A write that fails on the connection is retried with
the same rows after reconnecting; a write the database refuses (a data error, which validation
here should make impossible) is logged and dropped so that one bad row cannot stop the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any, Final

import psycopg
from loguru import logger
from psycopg import AsyncConnection

from stock_manager.shared.clock import KST, Clock, kst
from stock_manager.shared.kis.models import Quote
from stock_manager.shared.kis.ws_frames import OrderBook, Trade
from stock_manager.shared.market_status import INDICATIVE_HOUR_CODES, ViState, vi_from_quote, vi_from_trade

from . import candles as cdl
from .freshness import FreshnessRules, Source, Status, Verdict, WsHealth, judge
from .metrics import IngestMetrics
from .planner import SYMBOL_RE
from .queries import MERGE_BOTH, Q

TICK_TYPES: Final = ["text", "timestamptz", "numeric", "int8", "int8", "numeric", "int2", "text", "timestamptz"]
PRICE_TYPES: Final = ["text", "numeric", "numeric", "numeric", "int8", "int8", "int8", "numeric", "numeric", "numeric",
                      "numeric", "numeric", "numeric", "numeric", "numeric", "text", "timestamptz", "timestamptz"]
BAR_TYPES: Final = ["text", "timestamptz", "numeric", "numeric", "numeric", "numeric", "int8", "numeric", "int4",
                    "timestamptz", "timestamptz"]
BOOK_TYPES: Final = ["timestamptz", "text", "int8[]", "int8[]", "int8[]", "int8[]", "text", "timestamptz"]
QUOTE_TYPES: Final = ["timestamptz", "timestamptz", "text", "int8", "int8", "int8", "int8", "int8", "int8", "int8",
                      "int8", "int8"]
_SIDES: Final = {"1": 1, "3": 3, "5": 5}
_PCT_LIMIT: Final = Decimal(1_000_000)
# received_ts is stamped from the clock at most once per this many (monotonic) seconds
_STAMP_S: Final = 0.001

# (symbol, ts, price, qty, cum_volume, cum_turnover, side, source, received_ts): a market.ticks row.
TickRow = tuple[str, datetime, int, int, int | None, int | None, int | None, str, datetime]


@dataclass(frozen=True, slots=True)
class IngestConfig:
    batch_window_s: float = 0.025
    max_pending: int = 200_000
    shed_after_s: float = 2.0
    housekeeping_s: float = 0.5
    candle_grace_market_s: float = 3.0
    candle_grace_wall_s: float = 1.5
    reconnect_max_s: float = 5.0
    record: bool = False  # keep every order book and quote for replays (market.books, market.quotes)


@dataclass(slots=True)
class _Fresh:
    last_ts: datetime
    received_ts: datetime
    received_mono: float
    status: Status
    reason: str | None
    written: bool = True


# (source, the trade or quote, received market time, received monotonic time): the newest price
# of one symbol in the pending batch.  A plain tuple, because one is built for every print.
_Latest = tuple[str, Trade | Quote, datetime, float]
# (symbol, state, reference, source, market time): one change of a symbol's VI state
ViRow = tuple[str, ViState, int | None, str, datetime]
# recording: (symbol, the book's market second) -> (the book, received); a market.quotes row
_BookKey = tuple[str, dtime]
_RecordedBooks = dict[_BookKey, tuple[OrderBook, datetime]]
QuoteRow = tuple[datetime, datetime, str, int, None, None, None, None, int, int | None, int | None, int | None]


def _none_if_zero(value: int) -> int | None:
    return value if value > 0 else None


class Ingest:
    def __init__(
        self,
        conninfo: str,
        clock: Clock,
        *,
        rules: FreshnessRules | None = None,
        ws_health: Callable[[], WsHealth] | None = None,
        prev_range: Mapping[str, tuple[int | None, int | None]] | None = None,
        config: IngestConfig | None = None,
        metrics: IngestMetrics | None = None,
        connect: Callable[[str], Any] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._clock = clock
        self._rules = rules or FreshnessRules()
        self._ws_health = ws_health or (lambda: WsHealth(False, frozenset(), 0.0))
        self.prev_range: dict[str, tuple[int | None, int | None]] = dict(prev_range or {})
        self._cfg = config or IngestConfig()
        self.metrics = metrics or IngestMetrics()
        self._connect = connect

        self._ticks: list[TickRow] = []
        self._recv: list[float] = []
        self._latest: dict[str, _Latest] = {}
        self._books: dict[str, OrderBook] = {}
        self._vi_rows: list[ViRow] = []
        # per symbol: the VI state and reference known, the (HOUR_CLS_CODE, VI_STND_PRC) of the last
        # print (so a print that repeats it costs one comparison) and the last book's HOUR_CLS_CODE
        self._vi: dict[str, tuple[ViState, int | None]] = {}
        self._vi_key: dict[str, tuple[str, int | None]] = {}
        self._vi_book: dict[str, str] = {}
        self._record = self._cfg.record
        self._book_rows: _RecordedBooks = {}
        self._book_sec: dict[str, dtime] = {}
        self._quote_rows: list[QuoteRow] = []
        self._first_mono: float | None = None
        self._has_data = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._eval_now = False

        self._valid: set[str] = set()
        self._cum: dict[str, tuple[date, int]] = {}
        self._stamp = clock.now()
        self._stamp_mono = 0.0
        self._ts: datetime = self._stamp
        self._ts_time: Any = None
        self._ts_day: date | None = None
        self._days_ensured: set[date] = set()
        self._days_needed: set[date] = set()
        self._last_day: date | None = None
        self._fresh: dict[tuple[str, Source], _Fresh] = {}
        self._last_seen: dict[str, float] = {}
        self._close_mark: datetime | None = None
        self._last_housekeeping = 0.0
        self._conn: AsyncConnection[Any] | None = None

    # --- the reader's side: append only -------------------------------------------------------

    def _check_symbol(self, symbol: str) -> bool:
        if SYMBOL_RE.match(symbol):
            self._valid.add(symbol)
            return True
        return False

    def _mark(self, mono: float) -> None:
        if self._first_mono is None:
            self._first_mono = mono
            self._has_data.set()
        if len(self._ticks) >= self._cfg.max_pending:
            self._room.clear()

    def add_trade(self, t: Trade) -> None:
        """One H0STCNT0 print: called 20,000 times a second, so every line here counts."""
        symbol = t.symbol
        if t.price <= 0 or t.volume < 0 or (symbol not in self._valid and not self._check_symbol(symbol)):
            self.metrics.rejected += 1
            return
        mono = time.monotonic()
        if mono - self._stamp_mono > _STAMP_S:
            self._stamp, self._stamp_mono = self._clock.now(), mono
        received = self._stamp
        if t.time != self._ts_time or t.business_date != self._ts_day:
            # prints come in runs of the same second: build the datetime once per run
            self._ts, self._ts_time, self._ts_day = t.ts, t.time, t.business_date
            if t.business_date != self._last_day:
                self._note_day(t.business_date)
        vi_key = (t.hour_cls_code, t.vi_standard_price)
        if self._vi_key.get(symbol) != vi_key:
            self._vi_key[symbol] = vi_key
            self._vi_from_trade(symbol, t)
        if t.volume == 0 and t.hour_cls_code in INDICATIVE_HOUR_CODES:
            # an auction's indicative record (during a VI, code C): nothing traded, so no tick, and
            # its price (the 예상체결가) is no price to publish
            self._mark(mono)
            return
        self._ticks.append(
            (symbol, self._ts, t.price, t.volume, t.cum_volume, t.cum_value, _SIDES.get(t.ccld_dvsn), "WS", received)
        )
        self._recv.append(mono)
        self._latest[symbol] = ("WS", t, received, mono)
        if self._first_mono is None:
            self._first_mono = mono
            self._has_data.set()
        if len(self._ticks) >= self._cfg.max_pending:
            self._room.clear()

    def add_book(self, book: OrderBook) -> None:
        """One H0STASP0 order book: best bid/ask only."""
        symbol = book.symbol
        if symbol not in self._valid and not self._check_symbol(symbol):
            return
        if self._vi_book.get(symbol) != book.hour_cls_code:
            self._vi_book[symbol] = book.hour_cls_code
            known = self._vi.get(symbol)
            state = vi_from_trade(book.hour_cls_code, known[0] if known else None)
            if state is not None and self._note_vi(symbol, state, known[1] if known else None, "WS",
                                                   self._clock.now()):
                self._vi_key.pop(symbol, None)
                self._mark(time.monotonic())
        if self._record:
            self._record_book(symbol, book)
        if not book.asks or not book.bids:
            return
        self._books[symbol] = book
        self._mark(time.monotonic())

    def _record_book(self, symbol: str, book: OrderBook) -> None:
        """Keep at most one book per symbol per market second (BSOP_HOUR has no finer grain): the
        last of its second while it is still pending, so a replay sees where each second ended;
        one that arrives after its second's row was written is dropped."""
        key = (symbol, book.time)
        if self._book_sec.get(symbol) != book.time:
            self._book_sec[symbol] = book.time
        elif key not in self._book_rows:
            return
        self._book_rows[key] = (book, self._clock.now())
        self._mark(time.monotonic())

    def _cum_volume(self, symbol: str, day: date) -> int | None:
        """The last cumulative volume seen today, pending prints included."""
        pending = self._latest.get(symbol)
        if pending is not None and isinstance(pending[1], Trade) and pending[1].business_date == day:
            return pending[1].cum_volume
        seen = self._cum.get(symbol)
        return seen[1] if seen is not None and seen[0] == day else None

    def add_quote(self, symbol: str, q: Quote) -> None:
        """One inquire-price answer.

        It carries no market time, so its time is the clock's at arrival.  When the cumulative
        volume grew since the last print or poll and no trade stream covers the symbol, the growth
        becomes one REST tick (so polled symbols get candles too).
        """
        if q.price <= 0 or (symbol not in self._valid and not self._check_symbol(symbol)):
            self.metrics.rejected += 1
            return
        mono = time.monotonic()
        received = self._clock.now()
        day = kst(received).date()
        if day != self._last_day:
            self._note_day(day)
        previous = self._cum_volume(symbol, day)
        streamed = symbol in self._ws_health().active
        if previous is not None and q.acml_vol > previous and not streamed:
            self._ticks.append((symbol, received, q.price, q.acml_vol - previous, q.acml_vol, q.acml_tr_pbmn, None,
                                "REST", received))
            self._recv.append(mono)
        if previous is None or q.acml_vol > previous:
            self._cum[symbol] = (day, q.acml_vol)
        self._latest[symbol] = ("REST", q, received, mono)
        if self._record:
            self._quote_rows.append((received, received, symbol, q.price, None, None, None, None, max(q.acml_vol, 0),
                                     _none_if_zero(q.open), _none_if_zero(q.high), _none_if_zero(q.low)))
        known = self._vi.get(symbol)
        state = vi_from_quote(q.vi_cls_code, known[0] if known else None)
        if state is not None and self._note_vi(symbol, state, known[1] if known else None, "REST", received):
            # the stream's next word is judged afresh, even if it repeats its last (a late answer
            # must not outlive what the stream says)
            self._vi_key.pop(symbol, None)
            self._vi_book.pop(symbol, None)
        self._mark(mono)

    def _vi_from_trade(self, symbol: str, t: Trade) -> None:
        known = self._vi.get(symbol)
        state = vi_from_trade(t.hour_cls_code, known[0] if known else None)
        if state is None:
            state = known[0] if known else ViState.NONE
        ref = t.vi_standard_price if t.vi_standard_price else (known[1] if known else None)
        if self._note_vi(symbol, state, ref, "WS", t.ts):
            self._vi_book.pop(symbol, None)

    def _note_vi(self, symbol: str, state: ViState, reference: int | None, source: str, ts: datetime) -> bool:
        """Queue a change of ``symbol``'s VI state for the next batch; False when nothing changed."""
        known = self._vi.get(symbol)
        if known == (state, reference):
            return False
        self._vi[symbol] = (state, reference)
        if known is None and state is ViState.NONE and reference is None:
            return False  # no VI and no reference: no row says more than none
        self._vi_rows.append((symbol, state, reference, source, ts))
        return True

    def _note_day(self, day: date) -> None:
        self._last_day = day
        if day not in self._days_ensured:
            self._days_needed.add(day)
        # a new trade date: yesterday's VI states and references say nothing about today
        self._vi.clear()
        self._vi_key.clear()
        self._vi_book.clear()

    @property
    def pending(self) -> int:
        return len(self._ticks)

    @property
    def full(self) -> bool:
        return not self._room.is_set()

    async def wait_room(self) -> None:
        """Back-pressure for the reader; sheds the oldest ticks if the writer stays stuck."""
        try:
            await asyncio.wait_for(self._room.wait(), self._cfg.shed_after_s)
        except TimeoutError:
            drop = len(self._ticks) // 2
            del self._ticks[:drop]
            del self._recv[:drop]
            self.metrics.dropped += drop
            self._room.set()
            logger.warning("ingest: writer stuck; dropped the {} oldest ticks (latest prices kept)", drop)

    def poke(self) -> None:
        """Something changed that can turn prices stale (e.g. the WebSocket dropped): judge now."""
        self._eval_now = True
        self._has_data.set()

    def last_seen(self, symbol: str) -> float | None:
        """Monotonic time data for ``symbol`` was last written (any source)."""
        return self._last_seen.get(symbol)

    def stale_count(self) -> int:
        return sum(1 for f in self._fresh.values() if f.status is Status.STALE)

    # --- the writer -----------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = 0.2
        try:
            while True:
                await self._wait_for_work()
                try:
                    conn = await self._connection()
                    if self._first_mono is not None:
                        await self._flush(conn)
                    if self._eval_now or time.monotonic() - self._last_housekeeping >= self._cfg.housekeeping_s:
                        await self._housekeeping(conn)
                    backoff = 0.2
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    logger.warning("ingest: database connection lost ({}); retrying in {:.1f}s", type(exc).__name__,
                                   backoff)
                    await self._drop_connection()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._cfg.reconnect_max_s)
                except psycopg.Error as exc:
                    # housekeeping refused (batches handle their own): log, keep ingesting, retry later
                    logger.error("ingest: housekeeping failed ({}: {})", type(exc).__name__,
                                 str(exc).splitlines()[0] if str(exc) else "")
                    if self._conn is not None:
                        with contextlib.suppress(psycopg.Error):
                            await self._conn.rollback()
                    self._last_housekeeping = time.monotonic() + backoff
                    backoff = min(backoff * 2, self._cfg.reconnect_max_s)
        finally:
            await self._drop_connection()

    async def _wait_for_work(self) -> None:
        while True:
            if self._first_mono is not None:
                wait = self._first_mono + self._cfg.batch_window_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                return
            due = self._last_housekeeping + self._cfg.housekeeping_s - time.monotonic()
            if self._eval_now or due <= 0:
                return
            self._has_data.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._has_data.wait(), due)

    async def _connection(self) -> AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            if self._connect is not None:
                conn = await self._connect(self._conninfo)
            else:
                conn = await AsyncConnection.connect(self._conninfo, autocommit=False)
            await conn.execute(Q["prepare_writer"])
            await conn.commit()
            self._conn = conn
        return self._conn

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def flush(self) -> None:
        """Write whatever is pending now (used at shutdown and by tests)."""
        conn = await self._connection()
        if self._first_mono is not None:
            await self._flush(conn)
        await self._housekeeping(conn)

    async def _ensure_days(self, conn: AsyncConnection[Any], days: set[date]) -> None:
        for day in sorted(days):
            await conn.execute(Q["ensure_tick_partition"], {"day": day})
            await conn.commit()
            self._days_ensured.add(day)
            self._days_needed.discard(day)

    async def ensure_days(self, *days: date) -> None:
        """Create tick partitions ahead of the trade dates that are coming (before ``run``)."""
        await self._ensure_days(await self._connection(), {d for d in days if d not in self._days_ensured})

    def request_days(self, *days: date) -> None:
        """Ask the running writer to create these partitions at its next chance."""
        self._days_needed.update(d for d in days if d not in self._days_ensured)
        self._eval_now = True
        self._has_data.set()

    async def _flush(self, conn: AsyncConnection[Any]) -> None:
        ticks, recv, latest, books, vi = self._ticks, self._recv, self._latest, self._books, self._vi_rows
        self._ticks, self._recv, self._latest, self._books, self._vi_rows = [], [], {}, {}, []
        recorded = (self._book_rows, self._quote_rows)
        self._book_rows, self._quote_rows = {}, []
        self._first_mono = None
        self._room.set()
        started = time.monotonic()
        now = self._clock.now()
        try:
            if self._days_needed:
                await self._ensure_days(conn, set(self._days_needed))
            await self._write(conn, ticks, latest, books, now, vi, recorded)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            # put the batch back in front of what arrived meanwhile and let run() reconnect
            self._ticks = ticks + self._ticks
            self._recv = recv + self._recv
            self._vi_rows = vi + self._vi_rows
            for sym, item in latest.items():
                self._latest.setdefault(sym, item)
            for sym, book in books.items():
                self._books.setdefault(sym, book)
            self._book_rows = recorded[0] | self._book_rows
            self._quote_rows = recorded[1] + self._quote_rows
            if self._first_mono is None:
                self._first_mono = started
            raise
        except psycopg.Error as exc:
            self.metrics.failed_batches += 1
            self.metrics.dropped += len(ticks)
            logger.error("ingest: the database refused a batch of {} ticks ({}: {}); batch dropped",
                         len(ticks), type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            with contextlib.suppress(psycopg.Error):
                await conn.rollback()
            return
        done = time.monotonic()
        self.metrics.ticks_in += len(ticks)
        self.metrics.latency.add_many(done, recv)
        self.metrics.window.add_many(done, recv)
        self.metrics.ticks_written += len(ticks)
        self.metrics.prices_written += len(latest)
        self.metrics.batches += 1
        self.metrics.last_batch_ms = (done - started) * 1000.0
        self.metrics.write_ms.add_many(done, [started])
        for sym, (_, value, _, mono) in latest.items():
            self._last_seen[sym] = mono
            if isinstance(value, Trade):
                self._cum[sym] = (value.business_date, value.cum_volume)

    async def _write(
        self,
        conn: AsyncConnection[Any],
        ticks: list[TickRow],
        latest: dict[str, _Latest],
        books: dict[str, OrderBook],
        now: datetime,
        vi: list[ViRow] | None = None,
        recorded: tuple[_RecordedBooks, list[QuoteRow]] | None = None,
    ) -> None:
        cutoff = self._cutoff(now)
        bars, late = cdl.fold(ticks, cutoff)
        self.metrics.late_ticks += late
        fresh_rows = self._fresh_rows(latest, now) if latest else None
        async with conn.transaction():
            if ticks:
                await _copy(conn, Q["copy_ticks"], TICK_TYPES, ticks)
            if latest:
                await _copy(conn, Q["copy_prices"], PRICE_TYPES, self._price_rows(latest))
            if bars:
                await _copy(conn, Q["copy_candles"], BAR_TYPES, _bar_rows(bars))
            if latest and bars:
                await conn.execute(MERGE_BOTH)
            elif latest:
                await conn.execute(Q["merge_prices"])
            elif bars:
                await conn.execute(Q["merge_candles"])
            if books:
                await conn.execute(Q["update_books"], _book_params(books))
            if fresh_rows is not None:
                await conn.execute(Q["upsert_freshness"], fresh_rows)
            if vi:
                await conn.execute(Q["record_vi"], _vi_params(vi))
            if recorded is not None and recorded[0]:
                await _copy(conn, Q["copy_books"], BOOK_TYPES, _recorded_book_rows(recorded[0]))
            if recorded is not None and recorded[1]:
                await _copy(conn, Q["copy_quotes"], QUOTE_TYPES, recorded[1])

    def _cutoff(self, now: datetime) -> datetime:
        cutoff = cdl.close_cutoff(now, self._cfg.candle_grace_market_s, self._cfg.candle_grace_wall_s,
                                  self._clock.speed)
        # never move backwards, even if the clock is re-synced a little back
        if self._close_mark is not None and cutoff < self._close_mark:
            return self._close_mark
        self._close_mark = cutoff
        return cutoff

    def _price_rows(self, latest: dict[str, _Latest]) -> list[tuple[Any, ...]]:
        """One ``prices_in`` row per symbol, in the column order of ``copy_prices``."""
        out: list[tuple[Any, ...]] = []
        for sym, (_, v, received, _) in latest.items():
            prev_high, prev_low = self.prev_range.get(sym, (None, None))
            if isinstance(v, Trade):
                out.append((sym, v.price, _none_if_zero(v.bid1), _none_if_zero(v.ask1), max(v.bid_qty1, 0),
                            max(v.ask_qty1, 0), max(v.cum_volume, 0), max(v.cum_value, 0), _pct(v.change_pct),
                            _none_if_zero(v.open), _none_if_zero(v.high), _none_if_zero(v.low),
                            _none_if_zero(v.price - v.change), prev_high, prev_low, "WS", v.ts, received))
            else:
                out.append((sym, v.price, None, None, None, None, max(v.acml_vol, 0), max(v.acml_tr_pbmn, 0),
                            _pct(v.change_pct), _none_if_zero(v.open), _none_if_zero(v.high), _none_if_zero(v.low),
                            _none_if_zero(v.base_price), prev_high, prev_low, "REST", received, received))
        return out

    # --- freshness --------------------------------------------------------------------------------
    #
    # A verdict that changes (a new symbol, STALE turning FRESH) is written with the batch that
    # caused it, so data and verdict become visible together.  Mere progress of a FRESH row (its
    # last_ts, lag) is written by housekeeping every ``housekeeping_s``: readers who need the
    # exact time of the latest price have it in prices_best.

    def _fresh_rows(self, latest: dict[str, _Latest], now: datetime) -> dict[str, Any] | None:
        health = self._ws_health()
        speed = self._clock.speed
        limits = {Source.WS: self._rules.ws.market_seconds(speed), Source.REST: self._rules.rest.market_seconds(speed)}
        rows: list[tuple[str, Source, _Fresh]] = []
        for sym, (row_source, value, received, mono) in latest.items():
            source = Source.WS if row_source == "WS" else Source.REST
            data_ts = value.ts if isinstance(value, Trade) else received
            key = (sym, source)
            old = self._fresh.get(key)
            if (
                old is not None
                and old.status is Status.FRESH
                and (received - data_ts).total_seconds() <= limits[source]
                and (source is Source.REST or sym in health.active)
            ):
                # the steady state: still FRESH, and housekeeping writes the progress
                old.last_ts, old.received_ts, old.received_mono, old.written = data_ts, received, mono, False
                continue
            verdict = judge(source, sym, data_age_s=(now - received).total_seconds(),
                            arrival_lag_s=(received - data_ts).total_seconds(), speed=speed,
                            rules=self._rules, ws=health)
            f = _Fresh(data_ts, received, mono, verdict.status, verdict.reason)
            if old is None or old.status is not verdict.status:
                rows.append((sym, source, f))
            else:
                f.written = False
            self._fresh[key] = f
        return _fresh_params(rows, now) if rows else None

    def verdicts(self, now: datetime) -> list[tuple[str, Source, Verdict]]:
        """Every (symbol, source) whose status would change if judged at ``now``."""
        health = self._ws_health()
        speed = self._clock.speed
        changed = []
        for (sym, source), f in self._fresh.items():
            verdict = judge(source, sym, data_age_s=(now - f.received_ts).total_seconds(),
                            arrival_lag_s=(f.received_ts - f.last_ts).total_seconds(), speed=speed,
                            rules=self._rules, ws=health)
            if verdict.status is not f.status:
                changed.append((sym, source, verdict))
        return changed

    async def _housekeeping(self, conn: AsyncConnection[Any]) -> None:
        self._eval_now = False
        if self._days_needed:
            await self._ensure_days(conn, set(self._days_needed))
        self._last_housekeeping = time.monotonic()
        now = self._clock.now()
        for sym, source, verdict in self.verdicts(now):
            f = self._fresh[(sym, source)]
            f.status, f.reason, f.written = verdict.status, verdict.reason, False
        rows = [(sym, source, f) for (sym, source), f in self._fresh.items() if not f.written]
        cutoff = self._cutoff(now)
        async with conn.transaction():
            await conn.execute(Q["close_candles"], {"last_bucket": cutoff - cdl.MINUTE})
            if rows:
                await conn.execute(Q["upsert_freshness"], _fresh_params(rows, now))
        for _, _, f in rows:
            f.written = True


def _fresh_params(rows: list[tuple[str, Source, _Fresh]], now: datetime) -> dict[str, Any]:
    return {
        "symbol": [r[0] for r in rows],
        "source": [r[1].value for r in rows],
        "last_ts": [r[2].last_ts for r in rows],
        "received_ts": [r[2].received_ts for r in rows],
        "lag_ms": [_clamp_ms((r[2].received_ts - r[2].last_ts).total_seconds()) for r in rows],
        "status": [r[2].status.value for r in rows],
        "reason": [r[2].reason for r in rows],
        "checked_ts": now,
    }


def _vi_params(rows: list[ViRow]) -> dict[str, Any]:
    """Every change for the history; the last per symbol (``last``) for the state table."""
    last = {r[0]: i for i, r in enumerate(rows)}
    return {
        "symbol": [r[0] for r in rows],
        "state": [r[1].value for r in rows],
        "reference": [r[2] for r in rows],
        "source": [r[3] for r in rows],
        "ts": [r[4] for r in rows],
        "last": [last[r[0]] == i for i, r in enumerate(rows)],
    }


def _pct(value: Decimal) -> Decimal | None:
    return value if abs(value) < _PCT_LIMIT else None


def _clamp_ms(seconds: float) -> int:
    return int(max(min(seconds * 1000.0, 2_000_000_000), -2_000_000_000))


def _book_params(books: dict[str, OrderBook]) -> dict[str, list[Any]]:
    syms = list(books)
    return {
        "symbol": syms,
        "bid": [_none_if_zero(books[s].bids[0].price) for s in syms],
        "ask": [_none_if_zero(books[s].asks[0].price) for s in syms],
        "bid_qty": [max(books[s].bids[0].qty, 0) for s in syms],
        "ask_qty": [max(books[s].asks[0].qty, 0) for s in syms],
    }


def _recorded_book_rows(books: _RecordedBooks) -> Iterable[tuple[Any, ...]]:
    """``market.books`` rows: the book's time of day on the KST date it arrived."""
    for (symbol, at), (b, received) in books.items():
        ts = datetime.combine(kst(received).date(), at, KST)
        yield (ts, symbol, [lv.price for lv in b.asks], [lv.qty for lv in b.asks], [lv.price for lv in b.bids],
               [lv.qty for lv in b.bids], b.hour_cls_code, received)


def _bar_rows(bars: list[cdl.PartialBar]) -> list[tuple[Any, ...]]:
    return [(b.symbol, b.bucket, b.open, b.high, b.low, b.close, b.volume, b.turnover, b.n_ticks, b.open_ts,
             b.close_ts) for b in bars]


async def _copy(conn: AsyncConnection[Any], statement: Any, types: list[str], rows: Iterable[Sequence[Any]]) -> None:
    """Binary COPY: psycopg formats each row in C, far cheaper than dumping parameter arrays."""
    async with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            await copy.write_row(row)


def trade_dates_ahead(now: datetime) -> tuple[date, date]:
    """Today and tomorrow in KST: the partitions to have before the ticks arrive."""
    today = kst(now).date()
    return today, today + timedelta(days=1)
