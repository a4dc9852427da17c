"""What the account can afford: the broker's numbers, moved by every fill and order we make since.

The view starts from the broker's own figures (inquire-psbl-order for buying power, inquire-balance
for each symbol's sellable quantity) and between two of them follows our own activity, in both
directions: a buy fill adds shares and a sell fill adds its proceeds; an order sent takes what it
reserves.  It is still only this process's view (another Execution's fills, a cancel returning a
reservation, a manual order at HTS are not in it), so it never has the last word against an order:
when it says "not enough", the Submitter asks the broker again (``sync``) and decides on the broker's
fresh figures.  A refusal for lack of shares or cash therefore always rests on the broker's numbers,
never on a stale copy of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

from loguru import logger

from stock_manager.services.execution.rules import Funds, Intent, SymbolInfo, buy_reservation
from stock_manager.shared.kis.errors import KisError
from stock_manager.shared.market_rules import Fees

# (cash available for orders, sellable quantity per symbol), as the broker states them now
BrokerFunds = Callable[[], Awaitable[tuple[Decimal, dict[str, int]]]]


class FundsView:
    def __init__(self, commission_rate: Fees, broker_funds: BrokerFunds | None = None) -> None:
        self._rate = commission_rate
        self._broker_funds = broker_funds
        self._cash: Decimal | None = None
        self._sellable: dict[str, int] = {}
        self._sync: asyncio.Task[bool] | None = None
        self._sync_started = 0.0
        self.synced_at: float | None = None  # monotonic time the last broker figures were asked for

    def snapshot(self) -> Funds:
        return Funds(self._cash, dict(self._sellable))

    def refresh(self, cash: Decimal | None, sellable: dict[str, int]) -> None:
        """Take the broker's figures as they are (everything ours since is in them)."""
        self._cash = cash
        self._sellable = dict(sellable)

    def reserve(self, intent: Intent, info: SymbolInfo | None) -> None:
        """An order is on its way: what it holds at the broker is no longer available."""
        if intent.side == "BUY" and self._cash is not None and info is not None:
            need = buy_reservation(intent, info, self._rate)
            if need is not None:
                self._cash -= need
        elif intent.side == "SELL" and intent.symbol in self._sellable:
            self._sellable[intent.symbol] -= intent.qty

    def on_fill(self, side: str, symbol: str, qty: int, amount: Decimal, costs: Decimal) -> None:
        """A fill we recorded: bought shares can be sold at once, sale proceeds can buy at once.

        A symbol the view has no figure for stays unknown: adding to nothing would claim to know
        the whole holding.  Buy cash was taken when the order was reserved (at its limit, or the
        upper limit for a market order); the difference comes back with the next broker figures.
        """
        if side == "BUY":
            if symbol in self._sellable:
                self._sellable[symbol] += qty
        elif self._cash is not None:
            self._cash += amount - costs

    async def sync(self, since: float | None = None) -> bool:
        """Fresh figures from the broker, asked for no earlier than ``since`` (monotonic; None: a
        request already on its way will do).

        Callers share one request where it is recent enough.  Returns False when the broker could
        not be asked (the view is then left as it was).
        """
        if self._broker_funds is None:
            return False
        since = float("-inf") if since is None else since
        while True:
            running = self._sync
            if running is None or running.done():
                break
            if self._sync_started >= since:
                return await asyncio.shield(running)
            await asyncio.shield(running)
        self._sync_started = time.monotonic()
        self._sync = asyncio.create_task(self._fetch(self._sync_started))
        return await asyncio.shield(self._sync)

    async def _fetch(self, started: float) -> bool:
        assert self._broker_funds is not None
        try:
            cash, sellable = await self._broker_funds()
        except KisError as e:
            logger.warning("could not ask the broker for buying power and sellable quantities: {}", e)
            return False
        self.refresh(cash, sellable)
        self.synced_at = started
        return True
