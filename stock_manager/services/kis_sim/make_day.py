"""A recorded-format day made by the synthetic market (issue #14): no server and no orders, only the
symbols' states advanced over 08:30-18:00 with a print hook, written with ``shared/dayfile.py``.

    python -m stock_manager.services.kis_sim.make_day --seed 1 --date 2026-12-03 --symbols 40 \\
        --streamed 5 --out tests/data/synthetic-day.smday

What it holds, as PriceSync would have recorded it:

- ``symbols``: the first N names of the seeded universe (the simulator's, ``universe_size`` names,
  so KOSPI200 membership and designations are the simulator's too);
- ``trades``: every print of every symbol with the day's cumulative volume, at the whole second
  its frame would carry (prints within a second keep their order);
- ``books``: for the K most liquid names a ten-level snapshot at a print when it changed and the
  last one is ``BOOK_EVERY_S`` old (as H0STASP0 would have streamed them); none for the others;
- ``quotes``: for every name not streamed an inquire-price-style quote every 30-60 market seconds
  (seeded), until 15:40;
- ``events``: each VI's start (its kind and reference) and end (the uncross price).

The same arguments make the same tables: every draw comes from the seed, and each symbol is advanced
on the same schedule whatever else is in the day.
"""

from __future__ import annotations

import argparse
import time as wall
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from stock_manager.shared.dayfile import Day, table, write_day
from stock_manager.shared.market_rules import price_limits

from .config import SimConfig
from .kis_format import hour_code
from .listing import kospi200_members, seeded_designations
from .market import EPOCH, Print, PrintSide, SymbolState, day_rng, day_start, day_times
from .orders import Order
from .universe import Symbol, build_universe

BOOK_EVERY_S = 5.0
QUOTE_EVERY_S = (30.0, 60.0)
QUOTE_LATENCY_S = (0.02, 0.12)  # market time to PriceSync's receipt
START_S = 8 * 3600 + 30 * 60
END_S = 18 * 3600
# quotes are polled until the close is known and a little after (the after-hours sessions do not
# move the day's price; PriceSync's poller has nothing new to see)
QUOTES_END_S = 15 * 3600 + 40 * 60


def _us(ts: float) -> int:
    return round(ts * 1_000) * 1_000  # to the millisecond


def _second(ts: float) -> int:
    """A streamed frame's time: H0STCNT0 and H0STASP0 stamp HHMMSS, so a recording has whole seconds."""
    return int(ts) * 1_000_000


class _NoOrders:
    """The market's fill sink: the generator sends no orders, so nothing ever reaches it."""

    def on_fill(self, order: Order, qty: int, price: int, ts: float) -> None:
        raise AssertionError("the generator has no orders")

    def on_expire(self, order: Order, ts: float) -> None:
        raise AssertionError("the generator has no orders")

    def on_ioc_cancel(self, order: Order, ts: float) -> None:
        raise AssertionError("the generator has no orders")


class _Recorded(SymbolState):
    """A symbol whose every print is kept, watched or not: a hook only on the streamed names, so the
    others catch up with the market's coarser unwatched prints (``MAX_COLD_PRINTS_PER_CHUNK``), as
    the simulator's own untouched names do."""

    prints: list[Print]
    volumes: list[int]

    def _record(self, price: int, qty: int, side: PrintSide, ts: float) -> None:
        super()._record(price, qty, side, ts)
        self.prints.append(Print(ts, price, qty, side))
        self.volumes.append(self.stats.volume)


@dataclass
class _Rows:
    """Columns of the day's tables, filled symbol by symbol."""

    trades: dict[str, list[Any]] = field(default_factory=lambda: _cols("ts symbol price qty side cum_volume"))
    books: dict[str, list[Any]] = field(
        default_factory=lambda: _cols("ts symbol ask_prices ask_qtys bid_prices bid_qtys hour_cls_code"))
    quotes: dict[str, list[Any]] = field(
        default_factory=lambda: _cols("ts received_ts symbol price bid ask bid_qty ask_qty volume open high low"))
    events: dict[str, list[Any]] = field(
        default_factory=lambda: _cols("ts symbol kind state reference warn_code liquidation_trading"))

    done: dict[str, list[pa.Table]] = field(default_factory=lambda: {n: [] for n in ("trades", "books", "quotes",
                                                                                     "events")})

    def add(self, name: str, **values: Any) -> None:
        cols: dict[str, list[Any]] = getattr(self, name)
        for k, v in values.items():
            cols[k].append(v)

    def flush(self) -> None:
        """One symbol's rows into Arrow (a day of 2,500 names as Python lists would take gigabytes)."""
        for name, parts in self.done.items():
            cols: dict[str, list[Any]] = getattr(self, name)
            if cols["ts"]:
                parts.append(table(name, cols))
                setattr(self, name, {k: [] for k in cols})

    def table(self, name: str) -> pa.Table:
        parts = self.done[name]
        return pa.concat_tables(parts) if parts else table(name, [])


def _cols(names: str) -> dict[str, list[Any]]:
    return {n: [] for n in names.split()}


def _side(levels: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    pad = 10 - len(levels)
    return [p for p, _ in levels] + [0] * pad, [q for _, q in levels] + [0] * pad


def most_liquid(symbols: Sequence[Symbol], k: int) -> set[str]:
    """The ``k`` names a recording would have streamed: the most liquid tier first, then by traded value."""
    live = [s for s in symbols if not s.halted]
    live.sort(key=lambda s: (s.tier, -s.prior_volume * s.prior_close, s.code))
    return {s.code for s in live[:k]}


def _run_symbol(st: _Recorded, rows: _Rows, streamed: bool, seed: int) -> None:
    code = st.sym.code
    start = day_start(st.day_no)
    last_book: list[Any] = [-1e18, None]

    def hook(s: SymbolState, p: Print) -> None:
        if p.ts - last_book[0] >= BOOK_EVERY_S:
            book = (s.levels(0), s.levels(1), hour_code(s))
            if book != last_book[1]:
                last_book[0], last_book[1] = p.ts, book
                ap, aq = _side(book[0])
                bp, bq = _side(book[1])
                rows.add("books", ts=_second(p.ts), symbol=code, ask_prices=ap, ask_qtys=aq, bid_prices=bp,
                         bid_qtys=bq, hour_cls_code=book[2])

    if streamed:
        st.print_hook = hook
    rng = day_rng(seed, code, st.day_no, "quote-times")
    t = start + START_S
    while t < start + QUOTES_END_S:
        st.advance(t)
        if not streamed:  # PriceSync polls what it does not stream
            _quote(st, rows, t, t + rng.uniform(*QUOTE_LATENCY_S))
        t += rng.uniform(*QUOTE_EVERY_S)
    st.advance(start + END_S)
    st.print_hook = None
    for p, volume in zip(st.prints, st.volumes, strict=True):
        rows.add("trades", ts=_second(p.ts), symbol=code, price=p.price, qty=p.qty, side=p.side, cum_volume=volume)
    for vi in st.vis:
        rows.add("events", ts=_us(vi.started), symbol=code, kind="VI", state=vi.kind.upper(),
                 reference=vi.reference, warn_code=None, liquidation_trading=None)
    ends = [vi.ends for vi in st.vis]
    if ends:  # each VI ends at its uncross, whose price is the next print's and the new reference
        mine = list(zip(rows.trades["ts"], rows.trades["price"], strict=True))
        for end in ends:
            ref = next((pr for ts, pr in mine if ts >= _second(end)), None)
            rows.add("events", ts=_us(end), symbol=code, kind="VI", state="NONE", reference=ref, warn_code=None,
                     liquidation_trading=None)


def _quote(st: SymbolState, rows: _Rows, ts: float, received: float) -> None:
    s = st.stats
    ask, bid = st.best()
    asks, bids = st.levels(0, 1), st.levels(1, 1)
    rows.add("quotes", ts=_us(ts), received_ts=_us(received), symbol=st.sym.code, price=s.last, bid=bid or 0,
             ask=ask or 0, bid_qty=bids[0][1] if bids else 0, ask_qty=asks[0][1] if asks else 0, volume=s.volume,
             open=s.open, high=s.high, low=s.low)


def make_day(seed: int, trade_date: date, n_symbols: int, streamed: int,
             universe_size: int = SimConfig.universe_size) -> Day:
    """The synthetic market's ``trade_date`` for the first ``n_symbols`` names of the seeded universe."""
    day_no = (trade_date - EPOCH).days
    if day_times(day_no) is None:
        raise ValueError(f"{trade_date} is not a trading day")
    universe = build_universe(seed, max(universe_size, n_symbols))
    kospi200 = kospi200_members(universe)
    designations = seeded_designations(universe, seed, kospi200)
    symbols = list(universe.values())[:n_symbols]
    liquid = most_liquid(symbols, streamed)
    rows = _Rows()
    master: list[dict[str, Any]] = []
    for sym in symbols:
        lower, upper = price_limits(sym.prior_close, sym.market)
        d = designations.get(sym.code)
        master.append({
            "symbol": sym.code, "name": sym.name, "market": sym.market_name, "base_price": sym.prior_close,
            "upper_limit": upper, "lower_limit": lower, "prev_high": sym.prior_high, "prev_low": sym.prior_low,
            "prev_volume": sym.prior_volume, "halted": sym.halted, "designation": d.status if d else None,
            "warn_code": d.warning if d else "00", "liquidation_trading": d.liquidation if d else False,
            "kospi200": sym.code in kospi200,
        })
        st = _Recorded(sym, seed, day_start(day_no), _NoOrders(), kospi200=sym.code in kospi200)
        st.prints, st.volumes = [], []
        if d is not None:
            st.designation = d
        _run_symbol(st, rows, sym.code in liquid, seed)
        rows.flush()
    tables = {"symbols": table("symbols", master), **{n: rows.table(n) for n in rows.done}}
    meta = {"generator": "kis_sim.make_day", "seed": seed, "symbols": n_symbols, "streamed": streamed,
            "universe_size": universe_size}
    return Day(trade_date=trade_date, source="synthetic", tables=tables, meta=meta)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m stock_manager.services.kis_sim.make_day",
                                 description="A recorded-format day made by the synthetic market.")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--date", type=date.fromisoformat, required=True)
    ap.add_argument("--symbols", type=int, required=True, help="the first N names of the seeded universe")
    ap.add_argument("--streamed", type=int, default=0, help="how many of the most liquid get books")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    began = wall.perf_counter()
    day = make_day(args.seed, args.date, args.symbols, args.streamed)
    write_day(args.out, day)
    took = wall.perf_counter() - began
    counts = ", ".join(f"{k} {v:,}" for k, v in day.counts().items())
    print(f"{args.out}: {args.out.stat().st_size:,} bytes in {took:.1f} s ({counts})")


if __name__ == "__main__":
    main()
