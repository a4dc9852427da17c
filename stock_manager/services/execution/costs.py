"""Our fees and tax against the broker's own totals.

Every fill's fee and tax are computed here (``rules.fill_costs``) from a setting — the fee
schedule — and a tax rate table, and every PnL figure downstream rests on them.  Both can be wrong
for the account at hand (a branch account's tiers, an event rate, a tax change), and nothing else
would notice.  The broker states what it charged today in the balance it answers anyway at each
position check (inquire-balance output2 ``thdt_tlex_amt``), so the comparison costs no request.

The two totals are compared only when they describe the same trades: today's buy and sell amounts
in our ledger equal the broker's (``thdt_buy_amt``, ``thdt_sll_amt``).  A fill still on its way
would otherwise show as a cost difference.  A difference is recorded as a ``CostMismatch`` event
(WARN) once per distinct pair of totals, not on every pass while it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from stock_manager.services.execution.context import SERVICE, Q
from stock_manager.shared import events
from stock_manager.shared.kis.models import BalanceSummary
from stock_manager.shared.market_rules import trade_date


@dataclass(frozen=True, slots=True)
class CostCheck:
    trade_date: date
    ours: int
    broker: int

    @property
    def difference(self) -> int:
        """What the broker charged beyond what we recorded (negative: we recorded more)."""
        return self.broker - self.ours

    def as_json(self) -> dict[str, Any]:
        return {"trade_date": self.trade_date.isoformat(), "ours": self.ours, "broker": self.broker,
                "difference": self.difference}


def comparable(ours_buy: int, ours_sell: int, summary: BalanceSummary) -> bool:
    """Both sides count the same trades: otherwise a cost gap only says a fill is on its way."""
    return (ours_buy, ours_sell) == (summary.thdt_buy_amt, summary.thdt_sll_amt)


async def check_costs(conn: AsyncConnection[DictRow], summary: BalanceSummary | None,
                      now: datetime) -> CostCheck | None:
    """Compare today's costs with the broker's and record a new difference; None when not comparable."""
    if summary is None:
        return None
    day = trade_date(now)
    row = await (await conn.execute(Q["costs_of_day"], {"trade_date": day})).fetchone()
    assert row is not None  # an aggregate always answers
    if not comparable(int(row["buy_amt"]), int(row["sell_amt"]), summary):
        return None
    check = CostCheck(day, int(row["costs"]), summary.thdt_tlex_amt)
    if check.difference == 0:
        return check
    last = await (await conn.execute(Q["last_cost_mismatch"], {"service": SERVICE})).fetchone()
    seen = last["data"] if last is not None else {}
    if {k: seen.get(k) for k in ("trade_date", "ours", "broker")} != \
            {k: v for k, v in check.as_json().items() if k != "difference"}:
        await events.emit(conn, SERVICE, "CostMismatch",
                          f"today's fees and tax differ from the broker's: ours {check.ours:,} won, "
                          f"the broker's {check.broker:,} won ({check.difference:+,}); "
                          "check KIS_FEE_SCHEDULE / KIS_COMMISSION_RATE", level="WARN", market_ts=now,
                          **check.as_json())
    return check
