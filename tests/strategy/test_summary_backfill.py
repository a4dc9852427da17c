"""Migration 0021 fills in the profit factor and drawdown of days summarized before it, by the same
definitions as the summary rule (stock_manager/services/strategy/rules/summary.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from stock_manager.db import MIGRATIONS_DIR
from stock_manager.services.strategy.rules.summary import max_drawdown, profit_factor
from stock_manager.shared.clock import KST
from tests.support.pg import TestDb

DAYS = {
    date(2026, 3, 9): [5_000, -2_000, -7_000, 1_000],
    date(2026, 3, 10): [-500, 2_000, -1_800, 1_000, -400],
    date(2026, 3, 11): [1_000, 2_000],  # nothing lost: no profit factor
}


def test_the_backfill_agrees_with_the_rule(db: TestDb) -> None:
    (path,) = MIGRATIONS_DIR.glob("0021_*.sql")
    backfill = path.read_text(encoding="utf-8").split("\nUPDATE ", 1)[1]
    with psycopg.connect(db.admin_url, row_factory=dict_row) as conn:
        for d, pnls in DAYS.items():
            # inserted in reverse: the curve follows exit_ts, not the row order
            for i, pnl in reversed(list(enumerate(pnls))):
                t = datetime(d.year, d.month, d.day, 9, tzinfo=KST) + timedelta(minutes=10 * i)
                conn.execute(
                    "INSERT INTO trade.round_trips (symbol, first_fill_id, last_fill_id, trade_date, entry_ts, "
                    "exit_ts, qty, buy_amount, sell_amount, avg_entry_price, avg_exit_price, pnl) "
                    "VALUES ('005930', %s, %s, %s, %s, %s, 1, 1, 1, 1, 1, %s)",
                    (d.toordinal() * 100 + i, d.toordinal() * 100 + i, d, t, t + timedelta(minutes=5), pnl))
            conn.execute("INSERT INTO trade.daily_summaries (trade_date, trades_count) VALUES (%s, %s)",
                         (d, len(pnls)))
        conn.execute("UPDATE " + backfill)  # type: ignore[arg-type]
        got = {r["trade_date"]: (r["profit_factor"], r["max_drawdown"]) for r in conn.execute(
            "SELECT trade_date, profit_factor, max_drawdown FROM trade.daily_summaries")}
    for d, pnls in DAYS.items():
        ds = [Decimal(p) for p in pnls]
        assert got[d] == (profit_factor(ds), max_drawdown(ds)), d
