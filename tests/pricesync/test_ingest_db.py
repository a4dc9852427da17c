"""The ingest writer on a real database, connected as sm_pricesync: ticks, prices, candles, freshness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from stock_manager.services.pricesync.freshness import WsHealth
from stock_manager.services.pricesync.ingest import Ingest, IngestConfig, trade_dates_ahead
from stock_manager.shared.clock import KST, ManualClock
from tests.support.pg import TestDb

from .helpers import quote, trade

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=KST)


class Health:
    def __init__(self) -> None:
        self.value = WsHealth(True, frozenset({"005930", "000660", "035720"}), 0.5)

    def __call__(self) -> WsHealth:
        return self.value


@pytest.fixture
async def ingest(db: TestDb) -> AsyncIterator[tuple[Ingest, ManualClock, Health]]:
    clock = ManualClock(T0)
    health = Health()
    ing = Ingest(db.url("pricesync"), clock, ws_health=health, config=IngestConfig(batch_window_s=0.01))
    await ing.ensure_days(*trade_dates_ahead(clock.now()))
    try:
        yield ing, clock, health
    finally:
        await ing._drop_connection()


def rows(db: TestDb, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(db.admin_url, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


CANDLES_VS_TICKS = """
SELECT c.symbol, c.bucket_ts, c.high = t.high AND c.low = t.low AND c.volume = t.volume AND c.n_ticks = t.n
       AND c.turnover = t.turnover AND c.open = ANY (t.opens) AND c.close = ANY (t.closes) AS ok
  FROM market.candles c
  JOIN (SELECT symbol, date_trunc('minute', ts) AS bucket, max(price) AS high, min(price) AS low,
               sum(qty) AS volume, count(*) AS n, sum(price * qty) AS turnover,
               array_agg(price) FILTER (WHERE ts = first_ts) AS opens,
               array_agg(price) FILTER (WHERE ts = last_ts) AS closes
          FROM (SELECT *, min(ts) OVER w AS first_ts, max(ts) OVER w AS last_ts
                  FROM market.ticks
                WINDOW w AS (PARTITION BY symbol, date_trunc('minute', ts))) x
         GROUP BY symbol, date_trunc('minute', ts)) t
    ON t.symbol = c.symbol AND t.bucket = c.bucket_ts
"""


async def test_a_batch_lands_in_every_table(db: TestDb, ingest: tuple[Ingest, ManualClock, Health]) -> None:
    ing, clock, _ = ingest
    for i in range(300):
        sym = ("005930", "000660", "035720")[i % 3]
        ing.add_trade(trade(sym, T0 + timedelta(seconds=i // 3), 10_000 + (i * 37) % 500, qty=1 + i % 7, cum=i))
        if i % 30 == 29:
            clock.set(T0 + timedelta(seconds=i // 3 + 1))  # the clock follows the prints
            await ing.flush()
    fresh = rows(db, "SELECT symbol, source, status FROM market.freshness")
    assert {(f["symbol"], f["source"], f["status"]) for f in fresh} == {
        (s, "WS", "FRESH") for s in ("005930", "000660", "035720")}
    clock.advance(120)  # two market minutes without a print: closes the bars, and WS stops vouching
    await ing.flush()
    assert rows(db, "SELECT count(*) AS n FROM market.ticks")[0]["n"] == 300
    best = {r["symbol"]: r for r in rows(db, "SELECT * FROM market.prices_best")}
    assert set(best) == {"005930", "000660", "035720"}
    assert all(r["source"] == "WS" for r in best.values())
    last = rows(db, "SELECT DISTINCT ON (symbol) symbol, price FROM market.ticks ORDER BY symbol, ts DESC, "
                    "received_ts DESC")
    assert {r["symbol"]: r["price"] for r in last} == {s: r["price"] for s, r in best.items()}
    checks = rows(db, CANDLES_VS_TICKS)
    assert checks
    assert all(c["ok"] for c in checks), checks
    assert all(c["closed"] for c in rows(db, "SELECT closed FROM market.candles"))
    assert ing.metrics.late_ticks == 0
    quiet = rows(db, "SELECT status, reason FROM market.freshness")
    assert all(q["status"] == "STALE" and q["reason"].startswith("no trade for") for q in quiet)
    assert ing.metrics.ticks_written == 300
    assert ing.metrics.latency.total == 300


async def test_closed_bars_never_change(db: TestDb, ingest: tuple[Ingest, ManualClock, Health]) -> None:
    ing, clock, _ = ingest
    ing.add_trade(trade("005930", T0 + timedelta(seconds=5), 10_000, qty=3))
    await ing.flush()
    clock.advance(70)  # 10:01:10: the 10:00 bar is past its minute and the grace
    await ing.flush()
    [bar] = rows(db, "SELECT * FROM market.candles")
    assert bar["closed"]
    # a late print for the closed minute is kept as a tick but does not touch the bar
    ing.add_trade(trade("005930", T0 + timedelta(seconds=50), 12_000, qty=9))
    await ing.flush()
    assert rows(db, "SELECT count(*) AS n FROM market.ticks")[0]["n"] == 2
    [same] = rows(db, "SELECT * FROM market.candles")
    assert (same["high"], same["volume"], same["n_ticks"]) == (bar["high"], bar["volume"], bar["n_ticks"])
    assert ing.metrics.late_ticks == 1
    with psycopg.connect(db.url("pricesync")) as conn, pytest.raises(psycopg.errors.IntegrityConstraintViolation):
        conn.execute("UPDATE market.candles SET close = 1")


async def test_rest_polls_age_out_and_come_back(db: TestDb, ingest: tuple[Ingest, ManualClock, Health]) -> None:
    ing, clock, _ = ingest
    ing.add_quote("000270", quote("000270", 10_100, 5_000))
    await ing.flush()
    assert rows(db, "SELECT status FROM market.freshness WHERE symbol = '000270'")[0]["status"] == "FRESH"
    clock.advance(16)
    await ing.flush()
    [f] = rows(db, "SELECT status, reason FROM market.freshness WHERE symbol = '000270'")
    assert f["status"] == "STALE"
    assert f["reason"].startswith("last poll")
    # volume grew by 250 between two polls: that becomes one REST tick
    ing.add_quote("000270", quote("000270", 10_200, 5_250))
    await ing.flush()
    assert rows(db, "SELECT status FROM market.freshness WHERE symbol = '000270'")[0]["status"] == "FRESH"
    [t] = rows(db, "SELECT qty, price, source FROM market.ticks WHERE symbol = '000270'")
    assert (t["qty"], t["price"], t["source"]) == (250, 10_200, "REST")
    [p] = rows(db, "SELECT price, source, bid, prev_close FROM market.prices_best WHERE symbol = '000270'")
    assert (p["price"], p["source"], p["bid"], p["prev_close"]) == (10_200, "REST", None, 10_000)


async def test_a_lost_stream_turns_ws_prices_stale(db: TestDb, ingest: tuple[Ingest, ManualClock, Health]) -> None:
    ing, _, health = ingest
    ing.add_trade(trade("005930", T0, 10_000))
    await ing.flush()
    health.value = WsHealth(False, frozenset(), 0.0)
    ing.poke()
    await ing.flush()
    [f] = rows(db, "SELECT status, reason FROM market.freshness WHERE symbol = '005930'")
    assert (f["status"], f["reason"]) == ("STALE", "ws disconnected")
    [v] = rows(db, "SELECT fresh FROM market.prices_live WHERE symbol = '005930'")
    assert v["fresh"] is False


async def test_an_older_print_of_the_same_source_never_wins(
    db: TestDb, ingest: tuple[Ingest, ManualClock, Health]
) -> None:
    ing, _, _ = ingest
    ing.add_trade(trade("005930", T0 + timedelta(seconds=10), 10_500))
    await ing.flush()
    ing.add_trade(trade("005930", T0 + timedelta(seconds=5), 9_900))
    await ing.flush()
    [p] = rows(db, "SELECT price FROM market.prices_best")
    assert p["price"] == 10_500


async def test_other_roles_cannot_write_market(db: TestDb) -> None:
    for role in ("strategy", "execution", "readonly"):
        with psycopg.connect(db.url(role)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO market.candles (symbol, bucket_ts, open, high, low, close) "
                         "VALUES ('005930', date_trunc('minute', now()), 1, 1, 1, 1)")
