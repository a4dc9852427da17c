"""Wire compatibility: an unmodified third-party KIS client (python-kis) against the simulator.

Only the library's URL constants are pointed at the simulator; its code is used as published.
A socket guard makes sure nothing in the library reaches past 127.0.0.1.

python-kis 2.1.6 parses fill notices in the old 23-field layout (the one in KIS's own workbook
example; the live server moved to 26 fields in 2025-03, see kis-api-facts.md 7.5), so this
simulator instance is started with ``notice_fields=23``.  Everything else is the default.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest

from tests.kis_sim.conftest import SimServer, make_config

pykis = pytest.importorskip("pykis", reason="python-kis is not installed (pip install python-kis==2.1.6)")


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not ipaddress.ip_address(host).is_loopback:
            raise AssertionError(f"the third-party client tried to reach {address}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def pykis_sim(monkeypatch: pytest.MonkeyPatch, loopback_only: None) -> Iterator[SimServer]:
    import pykis.client.websocket
    import pykis.kis

    config = make_config(env="real", rate_limit_per_s=None, notice_fields=23)
    with SimServer(config) as sim:
        monkeypatch.setattr(pykis.kis, "REAL_DOMAIN", sim.url)
        monkeypatch.setattr(pykis.kis, "VIRTUAL_DOMAIN", sim.url)
        monkeypatch.setattr(pykis.client.websocket, "WEBSOCKET_REAL_DOMAIN", sim.ws_url)
        monkeypatch.setattr(pykis.client.websocket, "WEBSOCKET_VIRTUAL_DOMAIN", sim.ws_url)
        yield sim


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_python_kis_trades_against_the_simulator(pykis_sim: SimServer) -> None:
    from pykis import PyKis

    cano = f"{uuid.uuid4().int % 10**8:08d}"
    kis = PyKis(
        id="simuser",
        account=f"{cano}-01",
        appkey="PS" + uuid.uuid4().hex + "ab",
        secretkey=(uuid.uuid4().hex * 6)[:180],
        keep_token=False,
    )
    try:
        stock = kis.stock("005930")
        quote = stock.quote()
        assert quote.price > 0
        assert quote.symbol == "005930"

        account = kis.account()
        executions: list[Any] = []
        prices: list[Any] = []
        on_exec = account.on("execution", lambda _, e: executions.append(e.response))
        on_price = stock.on("price", lambda _, e: prices.append(e.response))
        assert wait_for(lambda: kis.websocket.connected, 5)
        pykis_sim.control("POST", "/sim/clock", {"speed": 30})
        assert wait_for(lambda: bool(prices), 5), "no real-time price reached python-kis"
        assert prices[0].symbol == "005930" and prices[0].price > 0

        market = stock.buy(qty=2)
        low = int(quote.price) * 9 // 10 // 100 * 100
        limit = stock.buy(price=low, qty=1)
        cancel = limit.cancel()
        sim_orders = {o["odno"]: o for o in pykis_sim.control("GET", "/sim/orders")}
        assert sim_orders[market.number]["filled_qty"] == 2
        assert sim_orders[cancel.number]["kind"] == "CANCEL"
        assert sim_orders[limit.number]["status"] == "CANCELLED"

        trade_day = date.fromisoformat(pykis_sim.control("GET", "/sim/clock")["trade_date"])
        daily = account.daily_orders(start=trade_day, country="KR")
        by_number = {o.order_number.number: o for o in daily.orders}
        assert by_number[market.number].executed_qty == 2
        assert by_number[limit.number].executed_qty == 0

        balance = account.balance(country="KR")
        assert balance.stock("005930").qty == 2

        assert wait_for(
            lambda: any(e.order_number.number == market.number and e.executed_qty == 2 for e in executions), 5
        ), f"python-kis got no fill notice for {market.number}: {executions}"
        fill = next(e for e in executions if e.order_number.number == market.number and e.executed_qty == 2)
        assert fill.price > 0 and fill.type == "buy"
        on_exec.unsubscribe()
        on_price.unsubscribe()
    finally:
        kis.websocket.disconnect()
