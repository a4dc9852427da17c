"""Test doubles for the services around Strategy, played through their tables as the owner.

PriceSync is a few rows in market.*; Execution turns an intent into an order and fills exactly as
its contract says (intent NEW -> PROCESSING -> SUBMITTED, order PENDING_SUBMIT -> ... , fills
append-only with fee and tax).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from stock_manager.shared.clock import KST
from stock_manager.shared.market_rules import Market, commission, sell_tax, trade_date
from stock_manager.shared.trade_states import ORD_DVSN

# a Tuesday, mid-session
T0 = datetime(2026, 3, 10, 10, 0, tzinfo=KST)
_order_no = itertools.count(1)
_exec_no = itertools.count(1)

SYMBOL_SQL = """
INSERT INTO market.symbols (symbol, name, market, base_price, upper_limit, lower_limit, halted, trade_date)
VALUES (%(symbol)s, %(symbol)s, 'KOSPI', %(base)s, %(upper)s, %(lower)s, %(halted)s, %(d)s)
ON CONFLICT (symbol) DO UPDATE SET halted = EXCLUDED.halted
"""
PRICE_SQL = """
INSERT INTO market.prices_best (symbol, price, bid, ask, bid_qty, ask_qty, volume, turnover, change_pct, source, ts)
VALUES (%(symbol)s, %(price)s, %(bid)s, %(ask)s, 1000, 1000, %(volume)s, %(turnover)s, %(change)s, 'WS', %(ts)s)
ON CONFLICT (symbol) DO UPDATE SET price = EXCLUDED.price, bid = EXCLUDED.bid, ask = EXCLUDED.ask,
    volume = EXCLUDED.volume, turnover = EXCLUDED.turnover, change_pct = EXCLUDED.change_pct, ts = EXCLUDED.ts
"""
CANDLE_SQL = """
INSERT INTO market.candles (symbol, bucket_ts, open, high, low, close, volume, turnover, n_ticks, closed)
VALUES (%(symbol)s, %(ts)s, %(close)s, %(high)s, %(low)s, %(close)s, 1000, %(turnover)s, 10, true)
ON CONFLICT DO NOTHING
"""


async def add_symbol(conn: AsyncConnection[Any], symbol: str, *, now: datetime = T0, price: int = 10_500,
                     base: int = 10_000, trend: str = "up", bars: int = 25, volume: int = 500_000,
                     turnover: int = 5_000_000_000, halted: bool = False, spread_ticks: int = 1,
                     price_age_s: float = 5.0) -> None:
    """A symbol with a price and 1-minute candles ending a minute before ``now``.

    ``trend="up"``: closes climb to just under ``price`` (a breakout signal); ``"flat"``: no signal.
    """
    await conn.execute(SYMBOL_SQL, {"symbol": symbol, "base": base, "upper": int(base * 1.3) // 10 * 10,
                                    "lower": int(base * 0.7) // 10 * 10, "halted": halted, "d": trade_date(now)})
    tick = 10 if price < 20_000 else 50
    await conn.execute(PRICE_SQL, {"symbol": symbol, "price": price, "bid": price - tick * spread_ticks,
                                   "ask": price, "volume": volume, "turnover": turnover,
                                   "change": round((price / base - 1) * 100, 2),
                                   "ts": now - timedelta(seconds=price_age_s)})
    for i in range(bars):
        ts = (now - timedelta(minutes=bars - i)).replace(second=0, microsecond=0)
        close = base + (price - base - 100) * i // max(1, bars - 1) if trend == "up" else price + (30 if i % 2 else -30)
        close = close // 10 * 10
        await conn.execute(CANDLE_SQL, {"symbol": symbol, "ts": ts, "close": close, "high": close + 10,
                                        "low": close - 10, "turnover": close * 1000})


async def set_price(conn: AsyncConnection[Any], symbol: str, price: int, *, now: datetime) -> None:
    await conn.execute("UPDATE market.prices_best SET price = %(p)s, bid = %(p)s - 10, ask = %(p)s, ts = %(ts)s"
                       " WHERE symbol = %(s)s", {"p": price, "s": symbol, "ts": now})


async def intents(conn: AsyncConnection[Any], **where: Any) -> list[dict[str, Any]]:
    rows = await (await conn.execute("SELECT * FROM trade.order_intents ORDER BY created_ts")).fetchall()
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


async def events(conn: AsyncConnection[Any], kind: str) -> list[dict[str, Any]]:
    cur = await conn.execute("SELECT * FROM ops.events WHERE kind = %s ORDER BY event_id", (kind,))
    return list(await cur.fetchall())


async def execute(conn: AsyncConnection[Any], intent_id: UUID, fills: Sequence[tuple[int, int]] = (), *,
                  final: str | None = None, reject: str | None = None, at: datetime = T0) -> int | None:
    """Play Execution for one intent: an order, its fills, its final status.  Returns the order id.

    ``fills``: (qty, price) pairs.  ``final`` defaults to FILLED when the fills cover the order,
    else PARTIAL.  ``reject``: the broker refused the order (order REJECTED, intent REJECTED).
    """
    i = await (await conn.execute("SELECT * FROM trade.order_intents WHERE intent_id = %s", (intent_id,))).fetchone()
    assert i is not None
    await conn.execute("UPDATE trade.order_intents SET status = 'PROCESSING', claimed_by = 'test-exec',"
                       " claimed_ts = now() WHERE intent_id = %s", (intent_id,))
    d = trade_date(at)
    cur = await conn.execute(
        "INSERT INTO trade.orders (intent_id, trade_date, broker_order_no, symbol, side, qty, order_type, ord_dvsn,"
        " limit_price, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'PENDING_SUBMIT') RETURNING order_id",
        (intent_id, d, f"{next(_order_no):010d}", i["symbol"], i["side"], i["qty"], i["order_type"],
         ORD_DVSN[i["order_type"]], i["limit_price"]))
    row = await cur.fetchone()
    assert row is not None
    order_id = int(row["order_id"])
    if reject is not None:
        await conn.execute("UPDATE trade.orders SET status = 'REJECTED', status_reason = %s WHERE order_id = %s",
                           (reject, order_id))
        await conn.execute("UPDATE trade.order_intents SET status = 'REJECTED', status_reason = %s"
                           " WHERE intent_id = %s", (reject, intent_id))
        return order_id
    await conn.execute("UPDATE trade.orders SET status = 'SUBMITTED', submitted_ts = now() WHERE order_id = %s",
                       (order_id,))
    await conn.execute("UPDATE trade.order_intents SET status = 'SUBMITTED' WHERE intent_id = %s", (intent_id,))
    await settle(conn, order_id, fills, final=final, at=at)
    return order_id


async def settle(conn: AsyncConnection[Any], order_id: int, fills: Sequence[tuple[int, int]] = (), *,
                 final: str | None = None, at: datetime = T0) -> None:
    """The broker's later word on an order already SUBMITTED: more fills, then ``final`` (FILLED when
    covered; CANCELLED for the rest, as an order the session ended with expires)."""
    o = await (await conn.execute("SELECT * FROM trade.orders WHERE order_id = %s", (order_id,))).fetchone()
    assert o is not None
    filled = int(o["filled_qty"])
    for qty, price in fills:
        amount = Decimal(qty * price)
        tax = sell_tax(amount, Market.KOSPI, trade_date(at)) if o["side"] == "SELL" else Decimal(0)
        await conn.execute(
            "INSERT INTO trade.fills (order_id, exec_key, symbol, side, qty, price, fee, tax, ts, source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'NOTICE')",
            (order_id, f"x{next(_exec_no)}", o["symbol"], o["side"], qty, price, commission(amount), tax, at))
        filled += qty
    status = final or ("FILLED" if filled >= int(o["qty"]) else "PARTIAL" if filled else o["status"])
    if filled and o["status"] == "SUBMITTED" and status != "FILLED":
        await conn.execute("UPDATE trade.orders SET status = 'PARTIAL', filled_qty = %s WHERE order_id = %s",
                           (filled, order_id))
    cancelled = int(o["qty"]) - filled if status == "CANCELLED" else 0
    await conn.execute("UPDATE trade.orders SET status = %s, filled_qty = %s, cancelled_qty = %s WHERE order_id = %s",
                       (status, filled, cancelled, order_id))


async def add_close(conn: AsyncConnection[Any], symbol: str, close: int, *, day: datetime = T0) -> None:
    """The 15:30 bar, which holds the closing uncross."""
    ts = day.replace(hour=15, minute=30, second=0, microsecond=0)
    await conn.execute(CANDLE_SQL, {"symbol": symbol, "ts": ts, "close": close, "high": close, "low": close,
                                    "turnover": close * 1000})


async def broker_checked(conn: AsyncConnection[Any], at: datetime, diffs: Sequence[dict[str, Any]] = ()) -> None:
    """Execution compared the broker's holdings, asked for at ``at``, with our fills (differences as
    ``{"symbol", "broker_qty", "our_qty"}``; none: they agree)."""
    await conn.execute(
        "INSERT INTO trade.position_checks (market_ts, verdict, symbols, diffs) VALUES (%s, %s, 1, %s::jsonb)",
        (at, "MISMATCH" if diffs else "AGREE", json.dumps(list(diffs))))
