"""The shipped synthetic day (tests/data/synthetic-day.smday) is what the generator makes today, and
it is a sane day: regenerated with the arguments it was made with, every table equals the file's.

When the market model changes on purpose, make it again with the command in ``ARGS``'s comment."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.compute as pc
import pytest

from stock_manager.services.kis_sim.make_day import make_day
from stock_manager.shared.dayfile import TABLES, Day, read_day

SHIPPED = Path(__file__).parent.parent / "data" / "synthetic-day.smday"
# python -m stock_manager.services.kis_sim.make_day --seed 20260101 --date 2026-12-03 --symbols 40 \
#     --streamed 5 --out tests/data/synthetic-day.smday
ARGS = {"seed": 20260101, "trade_date": date(2026, 12, 3), "n_symbols": 40, "streamed": 5}


@pytest.fixture(scope="module")
def shipped() -> Day:
    return read_day(SHIPPED)


def test_the_shipped_day_is_what_the_generator_makes(shipped: Day) -> None:
    made = make_day(**ARGS)  # type: ignore[arg-type]
    assert shipped.trade_date == ARGS["trade_date"] and shipped.source == "synthetic"
    for name in TABLES:
        # the writer sorts by time, stably; so does this comparison
        ours = made[name] if name == "symbols" else made[name].sort_by([("ts", "ascending")])
        assert ours.equals(shipped[name]), f"table {name} drifted from the generator: make the file again"


def test_the_shipped_day_is_sane(shipped: Day) -> None:
    symbols = {r["symbol"]: r for r in shipped["symbols"].to_pylist()}
    assert len(symbols) == ARGS["n_symbols"]
    trades = shipped["trades"].to_pylist()
    assert trades and {t["side"] for t in trades} <= {1, 3, 5}
    last: dict[str, int] = {}
    for t in trades:
        s = symbols[t["symbol"]]
        assert s["lower_limit"] <= t["price"] <= s["upper_limit"] and t["qty"] > 0
        assert t["cum_volume"] >= last.get(t["symbol"], 0) + t["qty"]  # monotone, each print counted
        last[t["symbol"]] = t["cum_volume"]
    assert not any(symbols[c]["halted"] for c in last)

    books = shipped["books"]
    streamed = set(books.column("symbol").to_pylist())
    assert len(streamed) == ARGS["streamed"]
    for b in books.to_pylist():
        asks = [p for p in b["ask_prices"] if p]
        bids = [p for p in b["bid_prices"] if p]
        assert asks == sorted(asks) and bids == sorted(bids, reverse=True)
        assert asks[0] > bids[0] and len(b["ask_prices"]) == 10 and b["hour_cls_code"] in ("0", "C")

    quotes = shipped["quotes"]
    quoted = set(quotes.column("symbol").to_pylist())
    assert quoted == set(symbols) - streamed  # PriceSync polls what it does not stream
    assert pc.all(pc.greater_equal(quotes["received_ts"], quotes["ts"])).as_py()
    for q in quotes.to_pylist():
        if q["ask"] and q["bid"]:
            assert q["ask"] > q["bid"]

    events = shipped["events"].to_pylist()
    for code in {e["symbol"] for e in events}:
        mine = [e["state"] for e in events if e["symbol"] == code]
        assert all(a != "NONE" and b == "NONE" for a, b in zip(mine[::2], mine[1::2], strict=True))
