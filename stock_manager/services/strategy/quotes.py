"""Quotes Strategy asks the broker for itself, when PriceSync's published one is too old to judge.

A port (``QuoteSource``) so the hold loop does not care where the price comes from: the KIS REST
client in the service, the same client against the simulator in tests, or nothing at all when the
service has no credentials (then a stale quote means no exit decision until a fresh one arrives,
never a decision on the stale one).

The REST quote is kept in the worker's memory only: ``market.*`` is PriceSync's to write.  Every
request goes through the app key's shared budget at POLL priority, below orders and reconciliation,
so a stall of PriceSync can never crowd out an exit order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from stock_manager.shared.kis.ports import Priority
from stock_manager.shared.kis.rest import KisRestClient


class QuoteUnavailable(Exception):
    """No quote to be had (no source, or the broker's answer is no price)."""


class QuoteSource(Protocol):
    async def price(self, symbol: str) -> Decimal:
        """The symbol's current price; raises when there is none to be had."""
        ...


class BrokerQuotes:
    """KIS inquire-price (FHKST01010100) through the process's shared KIS client."""

    def __init__(self, rest: KisRestClient) -> None:
        self._rest = rest

    async def price(self, symbol: str) -> Decimal:
        q = await self._rest.inquire_price(symbol, priority=Priority.POLL)
        if q.price <= 0:
            raise QuoteUnavailable(f"{symbol}: the broker quoted {q.price}")
        return Decimal(q.price)


class NoQuotes:
    """The source of a Strategy that cannot reach the broker (no credentials in this mode)."""

    def __init__(self, why: str) -> None:
        self.why = why

    async def price(self, symbol: str) -> Decimal:
        raise QuoteUnavailable(self.why)


@dataclass(frozen=True)
class RestQuote:
    """A REST price as a worker holds it: fetched at ``at`` (market clock), judged while young."""

    symbol: str
    price: Decimal
    at: datetime
