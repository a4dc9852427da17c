"""Cash and holdings of the simulated accounts.

Cash follows KIS's split: ``cash`` already includes every execution (what D+2 will show, and
what buying power is computed from), while the deposit fields of inquire-balance lag by the
T+2 settlement, which is how a real account looks during the day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from .orders import Order


def business_days_before(d: date, n: int) -> date:
    """The business day ``n`` days before ``d`` (weekends skipped, holidays not modelled)."""
    out = d
    while n > 0:
        out -= timedelta(days=1)
        if out.weekday() < 5:
            n -= 1
    return out


@dataclass(slots=True)
class Position:
    symbol: str
    name: str
    qty: int = 0
    sell_reserved: int = 0
    cost: int = 0  # purchase amount of the quantity held (pchs_amt)
    today: date | None = None
    thdt_buy_qty: int = 0
    thdt_sll_qty: int = 0
    bfdy_buy_qty: int = 0
    bfdy_sll_qty: int = 0

    def roll(self, today: date) -> None:
        if self.today != today:
            if self.today is not None:
                self.bfdy_buy_qty, self.bfdy_sll_qty = self.thdt_buy_qty, self.thdt_sll_qty
            self.thdt_buy_qty = self.thdt_sll_qty = 0
            self.today = today

    @property
    def sellable(self) -> int:
        return self.qty - self.sell_reserved

    @property
    def avg_price(self) -> float:
        return self.cost / self.qty if self.qty else 0.0


@dataclass(slots=True)
class DayFlows:
    buy_amt: int = 0
    sell_amt: int = 0
    costs: int = 0  # commission + tax

    @property
    def net(self) -> int:
        return self.sell_amt - self.buy_amt - self.costs


@dataclass(slots=True)
class Account:
    key: str  # "CANO-ACNT_PRDT_CD"
    cano: str
    prdt: str
    app_key: str
    start_cash: int
    cash: int
    reserved: int = 0
    positions: dict[str, Position] = field(default_factory=dict)
    flows: dict[date, DayFlows] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)

    @property
    def orderable_cash(self) -> int:
        return self.cash - self.reserved

    def day(self, d: date) -> DayFlows:
        flows = self.flows.get(d)
        if flows is None:
            flows = self.flows[d] = DayFlows()
        return flows

    def position(self, symbol: str, name: str, today: date) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol, name)
        pos.roll(today)
        return pos

    def settled_cash(self, today: date, lag: int) -> int:
        """Cash counting only the trades that have settled ``lag`` business days after them."""
        cutoff = business_days_before(today, lag)
        return self.start_cash + sum(f.net for d, f in self.flows.items() if d <= cutoff)

    def visible_positions(self, today: date) -> list[Position]:
        """Holdings plus positions sold out today (KIS lists those with quantity 0 until D+2)."""
        out = []
        for pos in self.positions.values():
            pos.roll(today)
            if pos.qty > 0 or pos.thdt_sll_qty > 0 or pos.thdt_buy_qty > 0:
                out.append(pos)
        return sorted(out, key=lambda p: p.symbol)
