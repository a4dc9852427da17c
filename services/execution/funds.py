"""What the account can afford, as Execution last learned it from the broker.

Refreshed by the reconciler from inquire-psbl-order (buying power) and inquire-balance (sellable
quantities); between refreshes every order this process sends is subtracted (and an order that did not go out
gets its reservation back at the next refresh), so a burst of buys
cannot each believe it has the whole cash.  It only lets Execution reject early with a clear
reason: the broker still has the last word (APBK0952 ends the order REJECTED).
"""

from __future__ import annotations

from decimal import Decimal

from services.execution.rules import Funds, Intent, SymbolInfo, buy_reservation


class FundsView:
    def __init__(self, commission_rate: Decimal) -> None:
        self._rate = commission_rate
        self._cash: Decimal | None = None
        self._sellable: dict[str, int] = {}

    def snapshot(self) -> Funds:
        return Funds(self._cash, dict(self._sellable))

    def refresh(self, cash: Decimal | None, sellable: dict[str, int]) -> None:
        self._cash = cash
        self._sellable = dict(sellable)

    def reserve(self, intent: Intent, info: SymbolInfo | None) -> None:
        if intent.side == "BUY" and self._cash is not None and info is not None:
            need = buy_reservation(intent, info, self._rate)
            if need is not None:
                self._cash -= need
        elif intent.side == "SELL" and intent.symbol in self._sellable:
            self._sellable[intent.symbol] -= intent.qty
