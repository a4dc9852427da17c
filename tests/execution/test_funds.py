"""FundsView: follows every fill in both directions, and asks the broker before it may say no."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from stock_manager.services.execution.funds import FundsView
from stock_manager.services.execution.rules import Intent, SymbolInfo, unaffordable
from stock_manager.shared.kis.errors import KisError
from stock_manager.shared.market_rules import Market

RATE = Decimal("0.00015")
INFO = SymbolInfo("993350", Market.KOSDAQ, False, 13_000, 7_000, Decimal(10_000))


def sell(qty: int) -> Intent:
    return Intent("i", "k", "993350", "SELL", "EXIT_FULL", qty, "MKT", None)


class Broker:
    """The broker's figures, changed by the test; counts how often it was asked."""

    def __init__(self) -> None:
        self.cash = Decimal(1_000_000)
        self.sellable: dict[str, int] = {}
        self.calls = 0
        self.fail = False
        self.delay = 0.0

    async def __call__(self) -> tuple[Decimal, dict[str, int]]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise KisError("broker down")
        return self.cash, dict(self.sellable)


async def test_sold_out_then_bought_back_is_sellable_again_without_the_broker() -> None:
    broker = Broker()
    view = FundsView(RATE, broker)
    broker.sellable = {"993350": 0}  # KIS lists a symbol sold out today with quantity 0
    assert await view.sync()
    assert unaffordable(sell(297), INFO, view.snapshot(), RATE) is not None
    view.on_fill("BUY", "993350", 297, Decimal(2_970_000), Decimal(445))
    assert unaffordable(sell(297), INFO, view.snapshot(), RATE) is None
    view.reserve(sell(297), INFO)
    assert view.snapshot().sellable["993350"] == 0
    # proceeds of a sale can buy at once; a symbol the view never had a figure for stays unknown
    view.on_fill("SELL", "993350", 297, Decimal(3_000_000), Decimal(6_450))
    assert view.snapshot().cash == Decimal(1_000_000) + Decimal(3_000_000) - Decimal(6_450)
    view.on_fill("BUY", "005930", 5, Decimal(350_000), Decimal(52))
    assert "005930" not in view.snapshot().sellable


async def test_sync_takes_the_brokers_figures_and_shares_one_request() -> None:
    broker = Broker()
    broker.delay = 0.05
    view = FundsView(RATE, broker)
    broker.sellable = {"993350": 297}
    results = await asyncio.gather(*(view.sync() for _ in range(5)))
    assert results == [True] * 5
    assert broker.calls == 1
    assert view.snapshot().sellable == {"993350": 297}


async def test_sync_never_answers_with_figures_asked_for_before_since() -> None:
    broker = Broker()
    broker.delay = 0.05
    view = FundsView(RATE, broker)
    early = asyncio.create_task(view.sync())
    await asyncio.sleep(0.01)
    since = time.monotonic()  # e.g. an intent claimed after the first request left
    broker.sellable = {"993350": 50}
    assert await view.sync(since=since)
    await early
    assert broker.calls == 2
    assert view.snapshot().sellable == {"993350": 50}
    assert view.synced_at is not None and view.synced_at >= since


async def test_a_broker_that_cannot_be_asked_leaves_the_view_as_it_was() -> None:
    broker = Broker()
    view = FundsView(RATE, broker)
    broker.sellable = {"993350": 10}
    assert await view.sync()
    broker.fail = True
    assert not await view.sync()
    assert view.snapshot().sellable == {"993350": 10}
    assert not await FundsView(RATE).sync()  # no broker at all: nothing to ask
