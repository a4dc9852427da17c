"""Replay mode: a recorded day (``shared/dayfile.py``) as the simulator's market (``kis-sim --replay FILE``).

The file is loaded once: each table is grouped by symbol and sorted by time with pyarrow, then held
as a few large numpy arrays with per-symbol offsets, so a day of 2,500 symbols costs a few bytes
per print and per book level instead of a Python object per row.  A symbol's ``Tape`` is a set of
views into those arrays; its ``ReplayState`` plays it.

``ReplayState`` is a ``SymbolState`` whose price path, prints and book come from the tape, so
matching, call auctions, VI auctions, the after-hours sessions, candles and the WebSocket stream
are the base class's.  What plays as recorded and what is assumed is in docs/replay.md ("Replay
mode of the simulator"); in short:

- prints play at their recorded times through ``_record`` (stats, candles, H0STCNT0 see them as
  recorded); the fair value follows the last print and ``_walk`` draws nothing;
- the book is the latest recorded snapshot at or before now, else one synthesized around the last
  quote's bid and ask or the last print with the tier's depth;
- our orders take the recorded levels (less what we took from that snapshot); a resting order fills
  when a print trades through its price, or at its price once the queue shown ahead of it traded;
  our fills do not print and do not move the recorded prices (no impact);
- the opening and closing calls and recorded VI auctions uncross at the recorded print, our orders
  filling there if their limit crosses it, capped at its volume; the simulator starts no VI itself.

Nothing here is random: what the base class still draws (the crowd of the after-hours sessions, an
indicative price's crowd) comes from generators seeded from the file's trade date and the symbol.
"""

from __future__ import annotations

import math
import zipfile
from bisect import insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from stock_manager.shared import dayfile
from stock_manager.shared.clock import KST
from stock_manager.shared.market_rules import (
    Market,
    Phase,
    after_hours_limits,
    session_on,
    tick_size,
    ticks_away,
)

from .listing import NO_DESIGNATION, STATUS_NAMES, WARN_CODES, Designation
from .market import (
    BOOK_LEVELS,
    BUY_SIDE,
    OPENING_CALL,
    SELL_SIDE,
    Crowd,
    FillSink,
    Interruption,
    PrintSide,
    SymbolState,
    ViKind,
    day_number,
    day_start,
)
from .orders import Order
from .universe import TIER_PRINT_RATE, TIER_PRINT_VALUE, Symbol

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]

# A recorded snapshot is the book until a print or quote this much newer than it says the
# recording stopped following the symbol's book (PriceSync subscribes and unsubscribes names).
BOOK_STALE_S = 30.0
# A VI's end (its events row in state NONE) waits this long for the uncross print that follows it.
VI_END_WAIT_S = 2.0
# An opening VI is one recorded this soon after the open, before any trade.
OPENING_VI_WINDOW_S = 10.0
# Not in the file: listed shares, estimated from the prior day's volume (a turnover of 0.5 %).
LISTED_PER_DAY_VOLUME = 200
INF = math.inf
_VI_KINDS: dict[str, ViKind] = {"STATIC": "static", "DYNAMIC": "dynamic", "BOTH": "both", "AUCTION": "static"}


class ReplayError(Exception):
    """The replay cannot start; the message is one line naming the file."""


class Event(NamedTuple):
    ts: float
    kind: str  # VI | DESIGNATION
    state: str | None
    reference: int | None
    warn_code: str | None
    liquidation: bool | None


@dataclass(frozen=True, slots=True)
class Tape:
    """One symbol's recorded day: views into the recording's arrays, times in UTC epoch seconds."""

    trade_ts: F64
    trade_price: I32
    trade_qty: I32
    trade_side: I8
    book_ts: F64
    ask_p: I32  # (snapshots, BOOK_LEVELS), 0 where the level is empty
    ask_q: I32
    bid_p: I32
    bid_q: I32
    quote_ts: F64
    quote_bid: I32
    quote_ask: I32
    quote_bid_qty: I32
    quote_ask_qty: I32
    events: tuple[Event, ...]

    @property
    def opening_vi(self) -> Event | None:
        """The VI the opening call ran into: one recorded before any trade, at the open."""
        first_trade = float(self.trade_ts[0]) if len(self.trade_ts) else INF
        for e in self.events:
            if e.kind == "VI" and e.state in _VI_KINDS:
                return e if e.ts <= first_trade else None
        return None


def _tier(daily_value: float) -> int:
    """The liquidity tier whose typical day trades nearest ``daily_value`` KRW (in log terms)."""
    typical = [rate * value * 23_400 for rate, value in zip(TIER_PRINT_RATE, TIER_PRINT_VALUE, strict=True)]
    if daily_value <= 0:
        return len(typical) - 1
    return min(range(len(typical)), key=lambda t: abs(math.log(daily_value / typical[t])))


def _market(name: str | None) -> Market:
    try:
        return Market(name or "KOSPI")
    except ValueError:
        return Market.KOSPI


def _symbol(row: dict[str, Any]) -> Symbol:
    base = int(row["base_price"])
    high = int(row["prev_high"] or base)
    low = int(row["prev_low"] or base)
    volume = int(row["prev_volume"] or 0)
    # Parkinson's estimate from the prior day's range; the file has no volatility of its own
    daily_vol = min(max(0.6 * math.log(high / low), 0.01), 0.1) if high > low > 0 else 0.02
    return Symbol(code=row["symbol"], name=row["name"] or row["symbol"], market=_market(row["market"]),
                  tier=_tier(volume * base), prior_close=base, prior_high=max(high, base), prior_low=min(low, base),
                  prior_volume=max(1, volume), listed_shares=max(1, volume * LISTED_PER_DAY_VOLUME),
                  daily_vol=daily_vol, halted=bool(row["halted"]))


def _designation(status: str | None, warn: str | None, liquidation: bool | None) -> Designation:
    return Designation(status if status in STATUS_NAMES else None, warn if warn in WARN_CODES else "00",
                       bool(liquidation))


class _Grouped:
    """A table's rows of known symbols in symbol order (``codes``), by time within a symbol, each
    symbol's rows at ``offsets[i]:offsets[i + 1]``; columns are taken out one at a time as arrays.

    The order is numpy's stable sort of the symbol ids (a time sort first if the file's rows are not
    in time order), so prints of one moment keep their recorded order.
    """

    def __init__(self, t: pa.Table, codes: pa.Array) -> None:
        self.t = t
        ids = np.asarray(pc.fill_null(pc.index_in(t["symbol"], value_set=codes), -1).to_numpy(), dtype=np.int32)
        ts = self.column("ts", np.int64, ordered=False) if t.num_rows else np.zeros(0, np.int64)
        by_time = np.argsort(ts, kind="stable") if len(ts) > 1 and bool(np.any(np.diff(ts) < 0)) else None
        if by_time is not None:
            ids = ids[by_time]
        order = np.argsort(ids, kind="stable")
        order = order[ids[order] >= 0]
        self.order = by_time[order] if by_time is not None else order
        self.offsets = np.searchsorted(ids[order], np.arange(len(codes) + 1), side="left").astype(np.int64)

    def column(self, name: str, dtype: type[np.generic], *, ordered: bool = True) -> Any:
        col = self.t[name]
        if pa.types.is_timestamp(col.type):
            col = pc.cast(col, pa.int64())
        values = np.asarray(pc.fill_null(col, 0).to_numpy(), dtype=dtype)
        return values[self.order] if ordered else values

    def seconds(self) -> F64:
        return np.asarray(self.column("ts", np.int64), dtype=np.float64) / 1e6

    def levels(self, name: str) -> I32:
        """A list column as a (rows, BOOK_LEVELS) matrix, best level first, 0 where a level is missing."""
        n = self.t.num_rows
        out = np.zeros((n, BOOK_LEVELS), dtype=np.int32)
        if n:
            arr = self.t[name].combine_chunks()
            lengths = np.asarray(pc.fill_null(pc.list_value_length(arr), 0).to_numpy(), dtype=np.int64)
            values = np.asarray(pc.fill_null(pc.list_flatten(arr), 0).to_numpy(), dtype=np.int32)
            rows = np.repeat(np.arange(n), lengths)
            cols = np.arange(len(values)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            keep = cols < BOOK_LEVELS
            out[rows[keep], cols[keep]] = values[keep]
        return out[self.order]


def _derived_prints(ts: F64, price: I32, bid: I32, ask: I32, volume: I64) -> tuple[F64, I32, I32, I8]:
    """Prints of a symbol that was only polled (REST quotes): each rise of the day's volume between
    two quotes trades at the later quote's price, buy-initiated at or above the earlier ask, sell-
    initiated at or below the earlier bid, else by the direction of the price."""
    dv = np.diff(volume, prepend=0)
    prev_bid, prev_ask, prev_price = (np.concatenate(([0], a[:-1])) for a in (bid, ask, price))
    up = np.where(prev_ask > 0, price >= prev_ask, False) | ((price > prev_bid) & (price >= prev_price))
    side = np.where(up, BUY_SIDE, SELL_SIDE).astype(np.int8)
    keep = (dv > 0) & (price > 0)
    return ts[keep], price[keep], dv[keep].astype(np.int32), side[keep]


class Recording:
    """A loaded day file: the universe of its ``symbols`` table and every symbol's ``Tape``.

    Read a table at a time (``read``) and each dropped once its arrays are out, so the peak is one
    table's Arrow form beside the arrays; prices and quantities are kept as 4-byte integers.
    """

    def __init__(self, path: Path, read: Callable[[str], dayfile.Day]) -> None:
        self.path = path
        day = read("symbols")
        self.trade_date: date = day.trade_date
        self.day_no = day_number(datetime.combine(day.trade_date, time(12), KST).timestamp())
        self.seed = int(day.trade_date.strftime("%Y%m%d"))
        self.start_at = datetime.combine(day.trade_date, time(8), KST)
        rows = [r for r in day["symbols"].to_pylist() if (r["base_price"] or 0) > 0 and r["symbol"]]
        self.universe: dict[str, Symbol] = {r["symbol"]: _symbol(r) for r in rows}
        self.kospi200 = frozenset(r["symbol"] for r in rows if r["kospi200"])
        self.designations = {
            r["symbol"]: d for r in rows
            if (d := _designation(r["designation"], r["warn_code"], r["liquidation_trading"])) != NO_DESIGNATION
        }
        self.codes = list(self.universe)
        self.index = {code: i for i, code in enumerate(self.codes)}
        codes = pa.array(self.codes, pa.string())
        self._load_quotes(_Grouped(read("quotes")["quotes"], codes))
        self._load_trades(_Grouped(read("trades")["trades"], codes))
        self._load_books(_Grouped(read("books")["books"], codes))
        events: dict[str, list[Event]] = {}
        for e in read("events")["events"].sort_by([("ts", "ascending")]).to_pylist():
            events.setdefault(e["symbol"], []).append(
                Event(e["ts"].timestamp(), e["kind"], e["state"], e["reference"], e["warn_code"],
                      e["liquidation_trading"]))
        self.events = {code: tuple(evs) for code, evs in events.items()}
        pa.default_memory_pool().release_unused()

    def _load_quotes(self, g: _Grouped) -> None:
        self.q_off = g.offsets
        self.quote_ts = g.seconds()
        self.quote_bid, self.quote_ask = g.column("bid", np.int32), g.column("ask", np.int32)
        self.quote_bid_qty, self.quote_ask_qty = g.column("bid_qty", np.int32), g.column("ask_qty", np.int32)
        self._quote_price, self._quote_volume = g.column("price", np.int32), g.column("volume", np.int64)

    def _load_trades(self, g: _Grouped) -> None:
        t_off = g.offsets
        t_ts, t_price, t_qty, t_side = (g.seconds(), g.column("price", np.int32), g.column("qty", np.int32),
                                        g.column("side", np.int8))
        del g
        q_off = self.q_off
        polled = [i for i in range(len(self.codes)) if t_off[i] == t_off[i + 1] and q_off[i] < q_off[i + 1]]
        if not polled:
            self.trade_ts, self.trade_price, self.trade_qty, self.trade_side = t_ts, t_price, t_qty, t_side
            self.t_off = t_off
        else:  # symbols that were only polled get prints derived from their quotes
            parts: list[tuple[F64, I32, I32, I8]] = []
            derived = set(polled)
            for i in range(len(self.codes)):
                if i in derived:
                    q = slice(int(q_off[i]), int(q_off[i + 1]))
                    parts.append(_derived_prints(self.quote_ts[q], self._quote_price[q], self.quote_bid[q],
                                                 self.quote_ask[q], self._quote_volume[q]))
                else:
                    t = slice(int(t_off[i]), int(t_off[i + 1]))
                    parts.append((t_ts[t], t_price[t], t_qty[t], t_side[t]))
            self.t_off = np.concatenate(([0], np.cumsum([len(p[0]) for p in parts]))).astype(np.int64)
            self.trade_ts = np.concatenate([p[0] for p in parts])
            self.trade_price = np.concatenate([p[1] for p in parts])
            self.trade_qty = np.concatenate([p[2] for p in parts])
            self.trade_side = np.concatenate([p[3] for p in parts])
        del self._quote_price, self._quote_volume

    def _load_books(self, g: _Grouped) -> None:
        self.b_off = g.offsets
        self.book_ts = g.seconds()
        self.ask_p, self.ask_q = g.levels("ask_prices"), g.levels("ask_qtys")
        self.bid_p, self.bid_q = g.levels("bid_prices"), g.levels("bid_qtys")

    def tape(self, code: str) -> Tape:
        i = self.index[code]
        t = slice(int(self.t_off[i]), int(self.t_off[i + 1]))
        b = slice(int(self.b_off[i]), int(self.b_off[i + 1]))
        q = slice(int(self.q_off[i]), int(self.q_off[i + 1]))
        return Tape(self.trade_ts[t], self.trade_price[t], self.trade_qty[t], self.trade_side[t],
                    self.book_ts[b], self.ask_p[b], self.ask_q[b], self.bid_p[b], self.bid_q[b],
                    self.quote_ts[q], self.quote_bid[q], self.quote_ask[q], self.quote_bid_qty[q],
                    self.quote_ask_qty[q], self.events.get(code, ()))

    def state(self, sym: Symbol, now: float, sink: FillSink, *, kospi200: bool) -> ReplayState:
        return ReplayState(sym, self.seed, now, sink, kospi200=kospi200, tape=self.tape(sym.code),
                           recorded_day=self.day_no)

    def recorded_volume(self, code: str, ts: float) -> int:
        """The day's volume up to ``ts`` as recorded (a volume ranking of names nobody touched yet)."""
        i = self.index[code]
        a, b = int(self.t_off[i]), int(self.t_off[i + 1])
        end = a + int(np.searchsorted(self.trade_ts[a:b], ts, side="right"))
        return int(self.trade_qty[a:end].sum())


def load(path: Path) -> Recording:
    """The day file at ``path``, checked against the installed calendar; ReplayError if it cannot replay."""
    def read(table: str) -> dayfile.Day:
        try:
            day = dayfile.read_day(path, (table,))
        except dayfile.DayFileError as e:
            raise ReplayError(f"--replay {e}") from None
        except (OSError, zipfile.BadZipFile, pa.ArrowException) as e:
            raise ReplayError(f"--replay {path}: not a readable day file ({' '.join(str(e).split())})") from None
        if session_on(day.trade_date) is None:
            raise ReplayError(f"--replay {path}: {day.trade_date} is not a trading day in the simulator's calendar")
        return day

    rec = Recording(path, read)
    if not rec.universe:
        raise ReplayError(f"--replay {path}: the symbols table lists no symbol with a base price")
    return rec


def trade_date_of(path: Path) -> date:
    """The file's trade date from its meta alone (the calendar is installed around it before loading)."""
    try:
        return date.fromisoformat(str(dayfile.read_meta(path)["trade_date"]))
    except dayfile.DayFileError as e:
        raise ReplayError(f"--replay {e}") from None
    except (KeyError, ValueError):
        raise ReplayError(f"--replay {path}: meta.json has no valid trade_date") from None


# A book side: (price, shown quantity) per level, best first.
Side = list[tuple[int, int]]


class ReplayState(SymbolState):
    """One symbol's recorded day, played as the market (see the module docstring)."""

    def __init__(self, sym: Symbol, seed: int, now: float, sink: FillSink, *, kospi200: bool, tape: Tape,
                 recorded_day: int) -> None:
        self.tape = tape
        self.recorded_day = recorded_day
        super().__init__(sym, seed, now, sink, kospi200=kospi200)
        self._enter_day()

    # ------------------------------------------------------------------ the day

    def _enter_day(self) -> None:
        tape = self.tape
        self.on_tape = self.day_no == self.recorded_day
        self.x = math.log(self.base)
        self.cursor = 0  # next print to play
        self.book_cursor = 0  # next snapshot to match against (only while we have orders)
        self.event_cursor = 0
        self.opened = False
        self.recorded_vi: Interruption | None = None
        self.ahead: dict[int, int] = {}  # order seq -> shares shown ahead of it at its price
        self._book_cache: tuple[tuple[float, int, int], tuple[Side, Side]] | None = None
        self._book_key: tuple[str, int] | None = None
        start = day_start(self.day_no)
        n = len(tape.trade_ts) if self.on_tape else 0
        self.n_prints = n
        self.open_idx = 0 if n and int(tape.trade_side[0]) == OPENING_CALL else None
        ci = int(np.searchsorted(tape.trade_ts, start + self.times.close, side="left")) if n else n
        self.close_idx = ci if ci < n and float(tape.trade_ts[ci]) < start + self.times.post_close else None
        if self.close_idx is not None:
            self._retime_close(float(tape.trade_ts[self.close_idx]) - start)

    def _retime_close(self, offset: float) -> None:
        """Move the closing uncross to the recorded closing print (a recorded closing VI included).

        Relies on two attributes of SymbolState: ``close_offset`` and the sorted ``_bounds`` its
        ``_run_until`` walks, as ``_start_vi`` does for an extended close.
        """
        if not self.times.close <= offset < self.times.post_close:
            return
        if self.close_offset in self._bounds:
            self._bounds.remove(self.close_offset)
        self.close_offset = offset
        insort(self._bounds, offset)

    def advance(self, now: float) -> None:
        nd = day_number(now)
        if nd != self.day_no:
            super().advance(day_start(nd))
            self._enter_day()
        super().advance(now)

    # ------------------------------------------------------------------ the price path

    def _walk(self, dt: float) -> None:
        """Called for the stretches without continuous trading (calls, VI auctions): the tape plays on."""
        self._play(self.t + dt)

    def _continuous(self, t0: float, t1: float) -> float | None:
        self._play(t1)
        return None

    def _interrupts(self, price: int, ts: float, last: int | None = None) -> bool:
        return False  # VIs are the recording's: no print or order of ours starts one

    def _has_orders(self) -> bool:
        return bool(self.bids or self.asks or self.takers or self.auction)

    def _play(self, t1: float) -> None:
        """Everything recorded up to ``t1`` in time order: prints, then snapshots, then events at one moment."""
        if not self.on_tape:
            return
        tape = self.tape
        pe = self.cursor
        if self.opened and not self.closed:
            pe = int(np.searchsorted(tape.trade_ts, t1, side="right"))
            if self.close_idx is not None:
                pe = min(pe, self.close_idx)
        events = tape.events
        busy = self._has_orders()
        if not busy and (self.event_cursor >= len(events) or events[self.event_cursor].ts > t1):
            self._play_quiet(pe)
            return
        ts_l = tape.trade_ts[self.cursor:pe].tolist()
        price_l = tape.trade_price[self.cursor:pe].tolist()
        qty_l = tape.trade_qty[self.cursor:pe].tolist()
        side_l = tape.trade_side[self.cursor:pe].tolist()
        i, n = 0, len(ts_l)
        if busy:  # snapshots that came while nobody had an order need no matching
            self.book_cursor = max(self.book_cursor, int(np.searchsorted(tape.book_ts, self.t, side="right")))
        while True:
            tp = ts_l[i] if i < n else INF
            tb = INF
            if busy and self.book_cursor < len(tape.book_ts):
                tb = float(tape.book_ts[self.book_cursor])
                if tb > t1:
                    tb = INF
            te = events[self.event_cursor].ts if self.event_cursor < len(events) else INF
            if te > t1:
                te = INF
            if tp == INF and tb == INF and te == INF:
                break
            if tp <= tb and tp <= te:
                self.cursor += 1
                self._print(price_l[i], qty_l[i], side_l[i], tp)
                i += 1
            elif tb <= te:
                self.book_cursor += 1
                self.t = max(self.t, tb)
                self._match(tb)
            else:
                self.event_cursor += 1
                self._event(events[self.event_cursor - 1])
            busy = busy or self._has_orders()
        self.x = math.log(max(1, self.stats.last))

    def _play_quiet(self, pe: int) -> None:
        """Prints with nobody's order to fill: straight onto the tape."""
        tape = self.tape
        record = self._record
        for price, qty, side, ts in zip(tape.trade_price[self.cursor:pe].tolist(),
                                        tape.trade_qty[self.cursor:pe].tolist(),
                                        tape.trade_side[self.cursor:pe].tolist(),
                                        tape.trade_ts[self.cursor:pe].tolist(), strict=True):
            record(price, qty, side, ts)
        self.cursor = pe
        self.x = math.log(max(1, self.stats.last))

    def _print(self, price: int, qty: int, side: PrintSide, ts: float) -> None:
        self.t = max(self.t, ts)
        if self.recorded_vi is not None and ts > self.recorded_vi.started:
            self._end_recorded_vi((price, qty, side), ts)
            return
        self._record(price, qty, side, ts)
        self.x = math.log(price)
        if self.vi is None and self.phase() is Phase.CONTINUOUS:
            self._hit_resting(price, qty, side, ts)
            self._match(ts)

    def _event(self, e: Event) -> None:
        self.t = max(self.t, e.ts)
        if e.kind == "DESIGNATION":
            self.designation = _designation(e.state, e.warn_code, e.liquidation)
            self.book_dirty = True
            return
        if e.kind != "VI":
            return
        if e.state in _VI_KINDS and self.vi is None and self.opened and not self.closed:
            self._start_recorded_vi(_VI_KINDS[e.state], e.ts)
        elif e.state == "NONE" and self.recorded_vi is not None and self.recorded_vi.call != "close":
            nxt = float(self.tape.trade_ts[self.cursor]) if self.cursor < self.n_prints else INF
            if nxt > e.ts + VI_END_WAIT_S:  # no uncross print follows: the auction traded nothing
                self._end_recorded_vi(None, e.ts)

    # ------------------------------------------------------------------ VIs

    def _start_recorded_vi(self, kind: ViKind, ts: float) -> None:
        off = ts - day_start(self.day_no)
        if self.times.open <= off < self.times.close_auction:
            vi = self.force_vi("dynamic" if kind == "dynamic" else "static", ts)
        elif off >= self.times.close and self.in_call():
            # an extended closing call: it ends at the recorded closing print (_retime_close)
            vi = Interruption(kind, "close", ts, day_start(self.day_no) + self.close_offset, self.stats.last,
                              self.static_ref)
            self.vi = vi
            self.vis.append(vi)
            self.book_dirty = True
        else:
            vi = None
        self.recorded_vi = vi if vi is not None and vi.call != "close" else None

    def _end_recorded_vi(self, uncross: tuple[int, int, PrintSide] | None, ts: float) -> None:
        """The recorded VI's auction uncrosses at its first print (None: the recording shows none)."""
        self.recorded_vi = None
        self.vi = None
        orders = [o for o in self.auction if o.live]
        self.auction = []
        if uncross is not None:
            price, qty, side = uncross
            self._auction_fill(orders, price, qty, ts)
            self.static_ref = price  # before the print, whose frame carries it (VI_STND_PRC)
            self._record(price, qty, side, ts)
            self.x = math.log(price)
        self.book_dirty = True
        self._back_to_book(orders, ts)

    # ------------------------------------------------------------------ auctions

    def _uncross(self, ts: float, *, closing: bool, crowd: Crowd | None = None) -> None:
        """The opening and closing calls uncross at the recorded print; a VI auction's end the base
        class scheduled waits for the recorded one, and a VI the control API forced ends the base way."""
        if crowd is not None:
            if self.recorded_vi is not None:
                self.vi = self.recorded_vi  # the recording says when it ends
                return
            self.x = math.log(max(1, self.stats.last))
            super()._uncross(ts, closing=closing, crowd=crowd)
            return
        orders = [o for o in self.auction if o.live]
        self.auction = []
        if closing:
            self._close(orders, ts)
        else:
            self._open(orders, ts)

    def _open(self, orders: list[Order], ts: float) -> None:
        self.opened = True
        tape = self.tape
        opening_vi = tape.opening_vi if self.on_tape else None
        if opening_vi is not None and opening_vi.ts <= ts + OPENING_VI_WINDOW_S:
            kind = _VI_KINDS[opening_vi.state or "STATIC"]
            nxt = float(tape.trade_ts[0]) if self.n_prints else ts + 120
            vi = Interruption(kind, "open", ts, nxt, self.base, self.static_ref)
            self.vi = self.recorded_vi = vi
            self.vis.append(vi)
            self.auction = orders
            self.book_dirty = True
            return
        if self.open_idx is not None and self.cursor == self.open_idx:
            self.cursor += 1
            price, qty = int(tape.trade_price[0]), int(tape.trade_qty[0])
            self._auction_fill(orders, price, qty, ts)
            self._record(price, qty, OPENING_CALL, float(tape.trade_ts[0]))
            self.x = math.log(price)
        self.book_dirty = True
        self._back_to_book(orders, ts)

    def _close(self, orders: list[Order], ts: float) -> None:
        price = self.stats.last
        if self.close_idx is not None and self.cursor <= self.close_idx:
            i = self.close_idx
            price, qty = int(self.tape.trade_price[i]), int(self.tape.trade_qty[i])
            side: PrintSide = SELL_SIDE if int(self.tape.trade_side[i]) == SELL_SIDE else BUY_SIDE
            self._auction_fill(orders, price, qty, ts)
            self._record(price, qty, side, float(self.tape.trade_ts[i]))
        self.cursor = self.n_prints  # after the close the recording's prints are not played
        self.closed = True
        self.close_price = price
        self.ah_lower, self.ah_upper = after_hours_limits(price, self.base, self.sym.market)

    def _auction_fill(self, orders: Iterable[Order], price: int, volume: int, ts: float) -> None:
        """Our orders in a call whose limit crosses the recorded uncross price fill there, each side
        up to the recorded volume: market orders first, then better limits, then time."""
        for side in ("BUY", "SELL"):
            crossing = [o for o in orders if o.live and o.side == side
                        and (o.aggressive or (o.limit >= price if side == "BUY" else o.limit <= price))]
            crossing.sort(key=lambda o: (not o.aggressive, -o.limit if side == "BUY" else o.limit, o.seq))
            left = volume
            for o in crossing:
                q = min(left, o.remaining)
                if q <= 0:
                    break
                self.sink.on_fill(o, q, price, ts)
                left -= q

    def _back_to_book(self, orders: list[Order], ts: float) -> None:
        """What an uncross left open enters continuous trading as if it arrived now (time order kept)."""
        for o in sorted(orders, key=lambda o: o.seq):
            if o.live:
                self.submit(o, ts)

    # ------------------------------------------------------------------ our orders

    def submit(self, o: Order, ts: float) -> None:
        super().submit(o, ts)
        if (o.live and not o.aggressive and o.seq not in self.ahead and o not in self.auction
                and self.vi is None and self.phase() is Phase.CONTINUOUS):
            self.ahead[o.seq] = self._shown_at(0 if o.side == "SELL" else 1, o.limit)

    def _shown_at(self, side: int, price: int) -> int:
        """What the book shows at ``price`` on ``side`` (0 asks, 1 bids): the queue an order joining there
        stands behind.  Nothing inside the spread or in a gap; past the shown levels, a level's worth."""
        shown = self._book()[side]
        for p, q in shown:
            if p == price:
                return q
        if not shown or (price < shown[0][0] if side == 0 else price > shown[0][0]):
            return 0
        if price > shown[-1][0] if side == 0 else price < shown[-1][0]:
            return sum(q for _, q in shown) // len(shown)
        return 0

    def _hit_resting(self, price: int, qty: int, side: PrintSide, ts: float) -> None:
        """A recorded print fills our resting orders it trades through (at their price), and those at
        its price once the queue ahead of them has traded, as far as its volume goes."""
        for book, buying in ((self.bids, True), (self.asks, False)):
            left = qty
            for _, _, o in sorted(book, key=lambda e: (e[0], e[1])):
                if left <= 0:
                    break
                if not o.live:
                    continue
                through = price < o.limit if buying else price > o.limit
                at = price == o.limit and side != (BUY_SIDE if buying else SELL_SIDE)
                if not (through or at):
                    break
                if through:
                    self.ahead[o.seq] = 0
                else:
                    ahead = self.ahead.get(o.seq, 0)
                    used = min(ahead, left)
                    self.ahead[o.seq] = ahead - used
                    left -= used
                q = min(left, o.remaining)
                if q > 0:
                    left -= q
                    self._fill(o, q, o.limit, ts, SELL_SIDE if buying else BUY_SIDE)

    def _impact(self, side: int, value: float) -> None:
        """No price impact of our own orders in a replay: the prices are the recording's."""

    def _fill(self, o: Order, qty: int, price: int, ts: float, side: PrintSide) -> None:
        """Our fills do not print: the tape is the recording's (no price impact)."""
        self.book_dirty = True
        self.sink.on_fill(o, qty, price, ts)

    # ------------------------------------------------------------------ the book

    def _book(self) -> tuple[Side, Side]:
        """(asks, bids) as shown now, before what our orders took: the recorded snapshot, else one
        synthesized around the last quote or print.  When its source changes, what we took comes back."""
        at = (self.t, self.stats.volume, self.stats.last_side)
        cache = self._book_cache
        if cache is not None and cache[0] == at:
            return cache[1]
        key, book = self._build_book()
        if key != self._book_key:
            self._book_key = key
            self.consumed = ({}, {})
        self._book_cache = (at, book)
        return book

    def _build_book(self) -> tuple[tuple[str, int], tuple[Side, Side]]:
        tape = self.tape
        t = self.t
        last_print = self.stats.last_ts if self.stats.volume else -INF
        qi = int(np.searchsorted(tape.quote_ts, t, side="right")) - 1 if self.on_tape else -1
        last_quote = float(tape.quote_ts[qi]) if qi >= 0 else -INF
        bi = int(np.searchsorted(tape.book_ts, t, side="right")) - 1 if self.on_tape else -1
        if bi >= 0 and float(tape.book_ts[bi]) >= max(last_print, last_quote) - BOOK_STALE_S:
            asks = [(p, q) for p, q in zip(tape.ask_p[bi].tolist(), tape.ask_q[bi].tolist(), strict=True) if p > 0]
            bids = [(p, q) for p, q in zip(tape.bid_p[bi].tolist(), tape.bid_q[bi].tolist(), strict=True) if p > 0]
            return ("book", bi), (asks, bids)
        if qi >= 0 and last_quote >= last_print and int(tape.quote_ask[qi]) > 0 and int(tape.quote_bid[qi]) > 0:
            ask, bid = int(tape.quote_ask[qi]), int(tape.quote_bid[qi])
            top = (int(tape.quote_ask_qty[qi]), int(tape.quote_bid_qty[qi]))
            return ("quote", qi), (self._synth(0, ask, top[0]), self._synth(1, bid, top[1]))
        last = self.stats.last
        if self.stats.volume and self.stats.last_side == BUY_SIDE:  # the last trade lifted the ask
            ask, bid = last, last - tick_size(last - 1, self.sym.market)
        else:
            ask, bid = last + tick_size(last, self.sym.market), last
        key = ("print", last * 2 + (self.stats.last_side == BUY_SIDE))
        return key, (self._synth(0, ask, 0), self._synth(1, bid, 0))

    def _synth(self, side: int, start: int, top: int) -> Side:
        """Ten levels from ``start`` outward, within the daily limits: ``top`` shares at the first if
        known, the tier's depth (SymbolState._depth) elsewhere."""
        out: Side = []
        p = start
        for level in range(BOOK_LEVELS):
            if p > self.upper or p < self.lower or p <= 0:
                break
            out.append((p, top if level == 0 and top > 0 else super()._depth(side, p, level)))
            p = ticks_away(p, 1 if side == 0 else -1, self.sym.market)
        return out

    def best(self) -> tuple[int | None, int | None]:
        asks, bids = self.levels(0, 1), self.levels(1, 1)
        return (asks[0][0] if asks else None), (bids[0][0] if bids else None)

    def levels(self, side: int, n: int = BOOK_LEVELS) -> list[tuple[int, int]]:
        """The shown levels with shares left after what our orders took, best first (as KRX shows a
        book: a level we emptied is gone until the next snapshot)."""
        if self.sym.halted:
            return []
        out: list[tuple[int, int]] = []
        for i, (p, _) in enumerate(self._book()[side]):
            q = self._avail(side, p, i)
            if q > 0:
                out.append((p, q))
                if len(out) >= n:
                    break
        return out

    def _depth(self, side: int, price: int, level: int) -> int:
        shown = self._book()[side]
        if level < len(shown) and shown[level][0] == price:
            return shown[level][1]
        return next((q for p, q in shown if p == price), 0)

