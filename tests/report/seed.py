"""The monitoring seed's day (tests/ops/seed.py) made reportable: what each trade was decided on,
the 1-minute candles around the round trips, the parameters, and the daily summary as Strategy
writes it (its own ``write_daily_summary``).  And, for the chart cap, a day of many round trips.

The closed round trips of 2026-11-23 (pnl after fees and tax):
- #1 000660 SK하이닉스 09:10 -> 10:30, SIGNAL_BREAKOUT (score 1.85) -> TAKE_PROFIT   +27,222
- #2 035720 카카오     09:40 -> 11:15, SIGNAL_BREAKOUT (score 0.92) -> STOP_LOSS     -11,910
so profit factor 27,222 / 11,910 = 2.2856, max drawdown 11,910, win rate 50 %.  Fees and tax on all
of the day's fills (the two positions still open included): fees 1,121, tax 5,496.
"""

from __future__ import annotations

import asyncio
import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from stock_manager.services.strategy import book
from stock_manager.shared.clock import KST
from tests.ops.seed import TRADE_DATE, at, seed_day

PARAMS_VERSION = "breakout-2026-11-01"
STRATEGY_VERSION = "breakout-v1"
PROFIT_FACTOR = Decimal("2.2856")
MAX_DRAWDOWN = Decimal(11910)
FEES = Decimal(177 + 181 + 126 + 124 + 315 + 106 + 92)
TAXES = Decimal(2420 + 1660 + 1416)

# action_key -> (reason, context) as Strategy's worker writes them (workers.py)
DECISIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "a-buy": ("SIGNAL_BREAKOUT", {"breakout_pct": 0.81, "trend_pct": 1.04, "spread_pct": 0.08, "above_short": True,
                                  "score": "1.85", "strategy": "breakout", "reserve_price": "118500"}),
    "a-sell": ("TAKE_PROFIT", {"rule": "TAKE_PROFIT", "pnl_pct": 2.54, "take_profit_pct": 2.5,
                               "strategy": "breakout"}),
    "b-buy": ("SIGNAL_BREAKOUT", {"breakout_pct": 0.35, "trend_pct": 0.57, "spread_pct": 0.12, "above_short": True,
                                  "score": "0.92", "strategy": "breakout"}),
    "b-sell": ("STOP_LOSS", {"rule": "STOP_LOSS", "pnl_pct": -1.19, "stop_loss_pct": -1.0, "strategy": "breakout"}),
    "c-buy": ("SIGNAL_BREAKOUT", {"breakout_pct": 0.4, "score": "0.7"}),
    "c-sell": ("TAKE_PROFIT", {"rule": "TAKE_PROFIT", "pnl_pct": 1.14}),
    "d-buy": ("SIGNAL_BREAKOUT", {"breakout_pct": 0.2, "score": "0.5"}),
}
EXIT_REASONS = {"000660": "TAKE_PROFIT", "035720": "STOP_LOSS"}


def candles(conn: psycopg.Connection[Any], symbol: str, start: datetime, minutes: int, through: list[tuple[
        datetime, int]], tick: int) -> None:
    """1-minute bars that pass through each (time, price) of ``through``, a gentle wave in between."""
    marks = sorted(through)
    for i in range(minutes):
        ts = start + timedelta(minutes=i)
        before = [m for m in marks if m[0] <= ts] or marks[:1]
        after = [m for m in marks if m[0] > ts] or marks[-1:]
        (t0, p0), (t1, p1) = before[-1], after[0]
        w = 0.0 if t1 == t0 else min(1.0, max(0.0, (ts - t0) / (t1 - t0)))
        mid = p0 + (p1 - p0) * w + 3 * tick * math.sin(i / 4)
        close = round(mid / tick) * tick
        open_ = close - tick * (1 if i % 3 else -1)
        conn.execute(
            "INSERT INTO market.candles (symbol, bucket_ts, open, high, low, close, volume, turnover, n_ticks, "
            "closed) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 10, true)",
            (symbol, ts, open_, max(open_, close) + tick, min(open_, close) - tick, close, 1000 + 10 * i,
             close * (1000 + 10 * i)))


def _decisions(conn: psycopg.Connection[Any]) -> None:
    conn.execute("INSERT INTO trade.strategy_params (params_version, effective_date, strategy_version, params, note) "
                 "VALUES (%s, '2026-11-01', %s, %s, 'the defaults')",
                 (PARAMS_VERSION, STRATEGY_VERSION, Jsonb({"min_turnover": 5e9, "take_profit_pct": 2.5,
                                                           "stop_loss_pct": -1.0, "breakout_bars": 20})))
    for key, (reason, ctx) in DECISIONS.items():
        row = conn.execute(
            "UPDATE trade.order_intents SET reason = %s, strategy_version = %s, params_version = %s, "
            "worker_id = 'w1' WHERE action_key = %s RETURNING intent_id, symbol, side", (reason, STRATEGY_VERSION,
                                                                                       PARAMS_VERSION, key)).fetchone()
        assert row is not None, key
        cand = None
        if row["side"] == "BUY":
            cand = conn.execute(
                "INSERT INTO trade.candidates (scan_id, symbol, signal, score, inputs, filters, params_version) "
                "VALUES (gen_random_uuid(), %s, true, %s, %s, %s, %s) RETURNING candidate_id",
                (row["symbol"], Decimal(ctx["score"]), Jsonb(ctx), Jsonb({"passed": True, "rejected_by": []}),
                 PARAMS_VERSION)).fetchone()
        conn.execute("INSERT INTO trade.intent_context (intent_id, symbol, worker_id, candidate_id, context) "
                     "VALUES (%s, %s, 'w1', %s, %s)",
                     (row["intent_id"], row["symbol"], cand["candidate_id"] if cand else None, Jsonb(ctx)))
    for symbol, reason in EXIT_REASONS.items():
        conn.execute(
            "UPDATE trade.round_trips r SET exit_reason = %s, strategy_version = %s, params_version = %s, "
            "entry_intent_id = o.intent_id, entry_context = ic.context "
            "  FROM trade.fills f JOIN trade.orders o ON o.order_id = f.order_id "
            "  JOIN trade.intent_context ic ON ic.intent_id = o.intent_id "
            " WHERE r.symbol = %s AND f.fill_id = r.first_fill_id", (reason, STRATEGY_VERSION, PARAMS_VERSION,
                                                                      symbol))


async def _summarize(url: str, d: date) -> None:
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        await book.write_daily_summary(conn, d)
        await conn.commit()


def seed_report_day(url: str) -> None:
    seed_day(url)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        _decisions(conn)
        candles(conn, "000660", at(9, 0), 110, [(at(9, 10), 118000), (at(10, 0), 123000), (at(10, 30), 121000)], 500)
        candles(conn, "035720", at(9, 30), 115, [(at(9, 40), 42000), (at(10, 20), 42400), (at(11, 15), 41500)], 50)
        conn.commit()
    asyncio.run(_summarize(url, TRADE_DATE))


MANY_DATE = date(2026, 11, 24)


def seed_many_trips(url: str, n: int) -> None:
    """``n`` round trips of 005930 on 2026-11-24, one every 8 minutes from 09:05, each with its candles."""
    start = datetime(2026, 11, 24, 9, 0, tzinfo=KST)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        candles(conn, "005930", start, 8 * n + 20, [(start, 70000), (start + timedelta(minutes=8 * n), 71000)], 100)
        for i in range(n):
            t_in = start + timedelta(minutes=5 + 8 * i)
            t_out = t_in + timedelta(minutes=4)
            buy, sell = 70000 + 10 * i, 70000 + 10 * i + (300 if i % 3 else -200)
            fills = []
            for side, price, ts in (("BUY", buy, t_in), ("SELL", sell, t_out)):
                key = f"many-{i}-{side}"
                intent = conn.execute(
                    "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, reason) "
                    "VALUES (%s, '005930', %s, %s, 10, 'MKT', %s) RETURNING intent_id",
                    (key, side, "ENTRY" if side == "BUY" else "EXIT_FULL",
                     "SIGNAL_BREAKOUT" if side == "BUY" else "TAKE_PROFIT" if sell > buy else "STOP_LOSS")).fetchone()
                assert intent is not None
                order = conn.execute(
                    "INSERT INTO trade.orders (intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn, status) "
                    "VALUES (%s, %s, '005930', %s, 10, 'MKT', '01', 'PENDING_SUBMIT') RETURNING order_id",
                    (intent["intent_id"], MANY_DATE, side)).fetchone()
                assert order is not None
                fill = conn.execute(
                    "INSERT INTO trade.fills (order_id, exec_key, symbol, side, qty, price, fee, tax, ts, source) "
                    "VALUES (%s, %s, '005930', %s, 10, %s, 100, %s, %s, 'NOTICE') RETURNING fill_id",
                    (order["order_id"], key, side, price, 1400 if side == "SELL" else 0, ts)).fetchone()
                assert fill is not None
                fills.append(int(fill["fill_id"]))
            conn.execute(
                "INSERT INTO trade.round_trips (symbol, first_fill_id, last_fill_id, trade_date, entry_ts, exit_ts, "
                "qty, buy_amount, sell_amount, avg_entry_price, avg_exit_price, fees, taxes, pnl, exit_reason) "
                "VALUES ('005930', %s, %s, %s, %s, %s, 10, %s, %s, %s, %s, 200, 1400, %s, %s)",
                (fills[0], fills[1], MANY_DATE, t_in, t_out, buy * 10, sell * 10, buy, sell,
                 (sell - buy) * 10 - 1600, "TAKE_PROFIT" if sell > buy else "STOP_LOSS"))
        conn.commit()
