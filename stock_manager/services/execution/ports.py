"""What Execution asks of the broker, as a small Protocol, with KIS's adapter and an in-memory fake.

The contract every implementation keeps, on which the protocol's proof rests:

* ``place``, ``cancel`` and ``modify`` answer with the broker's acknowledgement, or raise
  ``BusinessRejected`` (the broker said no: nothing was placed), ``OutcomeUnknown`` (the request
  may have reached the broker: only its order list can tell; never retried), or any other
  ``KisError`` (the request provably never reached the broker: "not sent").
* ``orders_of_day`` lists every order the broker received on a day, newest first, at least back to
  ``ordered_since``; an order the broker received is in every list asked for afterwards.
* ``reserve_order_slot`` takes one order's place in the app key's request budget; ``place`` with
  ``slot_taken=True`` spends it on its first request instead of taking another.

``KisBroker`` is the real one (``KisRestClient`` and the shared budget); ``InMemoryBroker`` keeps the
same contract in memory, with scripted outcomes, for fast tests of the Submitter and the Reconciler
(cosmicpython's fakes).  The simulator stays for the integration tests.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Literal, Protocol

from stock_manager.shared.clock import KST, Clock
from stock_manager.shared.kis.errors import BusinessRejected, OutcomeUnknown, TransportError
from stock_manager.shared.kis.models import Balance, BalanceRow, DailyCcldRow, OrderAck, Side, format_odno
from stock_manager.shared.kis.ports import Priority, RateLimiter
from stock_manager.shared.kis.rest import KisRestClient

Qty = int | Literal["all"]


class BrokerPort(Protocol):
    async def reserve_order_slot(self) -> None: ...

    async def place(self, side: Side, symbol: str, qty: int, ord_dvsn: str, price: int, *,
                    slot_taken: bool) -> OrderAck: ...

    async def cancel(self, orgn_odno: str, org_no: str, qty: Qty, *, ord_dvsn: str) -> OrderAck: ...

    async def modify(self, orgn_odno: str, org_no: str, *, ord_dvsn: str, price: int, qty: Qty) -> OrderAck: ...

    async def orders_of_day(self, day: date, *, ordered_since: time | None) -> list[DailyCcldRow]: ...

    async def holdings(self) -> Balance: ...

    async def buying_power(self) -> tuple[Decimal, dict[str, int]]:
        """Orderable cash, and each symbol's sellable quantity, as the broker states them now."""
        ...


@dataclass
class KisBroker:
    """The port on KIS: the REST client, and the app key's budget it shares with every process."""

    rest: KisRestClient
    limiter: RateLimiter

    async def reserve_order_slot(self) -> None:
        # the token first (cached: no request), so that a slot is never spent waiting for one
        await self.rest.access_token()
        await self.limiter.acquire(Priority.ORDER)

    async def place(self, side: Side, symbol: str, qty: int, ord_dvsn: str, price: int, *,
                    slot_taken: bool) -> OrderAck:
        return await self.rest.order_cash(side, symbol, qty, ord_dvsn, price, slot_taken=slot_taken)

    async def cancel(self, orgn_odno: str, org_no: str, qty: Qty, *, ord_dvsn: str) -> OrderAck:
        return await self.rest.cancel(orgn_odno, org_no, qty, ord_dvsn=ord_dvsn)

    async def modify(self, orgn_odno: str, org_no: str, *, ord_dvsn: str, price: int, qty: Qty) -> OrderAck:
        return await self.rest.modify(orgn_odno, org_no, ord_dvsn=ord_dvsn, price=price, qty=qty)

    async def orders_of_day(self, day: date, *, ordered_since: time | None) -> list[DailyCcldRow]:
        return (await self.rest.inquire_daily_ccld(day, day, ordered_since=ordered_since)).rows

    async def holdings(self) -> Balance:
        return await self.rest.inquire_balance()

    async def buying_power(self) -> tuple[Decimal, dict[str, int]]:
        psbl = await self.rest.inquire_psbl_order("005930", 0, "01")
        balance = await self.rest.inquire_balance()
        return Decimal(psbl.ord_psbl_cash), {r.symbol: r.ord_psbl_qty for r in balance.rows}


class Outcome(Enum):
    """What the fake broker does with the next request it is sent."""

    ACK = "ack"  # takes it and answers
    REJECT = "reject"  # refuses it: nothing placed
    NOT_SENT = "not_sent"  # the request never reaches it: nothing placed
    TAKEN_NO_ANSWER = "taken_no_answer"  # takes it, the answer is lost: maybe sent, and it was
    LOST = "lost"  # the request is lost on the way: maybe sent, and it was not


@dataclass
class InMemoryBroker:
    """One account at a broker in memory.  ``script`` the outcomes of the next requests (ACK once
    the script is empty); ``fill`` and ``cancel_rest`` act as the market would.  ``placed`` is every
    order the broker ever took, which is what "sent twice" is checked against."""

    clock: Clock
    cash: Decimal = Decimal(100_000_000)
    placed: list[DailyCcldRow] = field(default_factory=list)
    requests: int = 0
    slots: int = 0
    _script: deque[Outcome] = field(default_factory=deque)
    _odno: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def script(self, *outcomes: Outcome | Iterable[Outcome]) -> None:
        for o in outcomes:
            self._script.extend([o] if isinstance(o, Outcome) else o)

    async def reserve_order_slot(self) -> None:
        self.slots += 1

    def _take(self, side: Side, symbol: str, qty: int, ord_dvsn: str, price: int, orgn: str | None) -> OrderAck:
        now = self.clock.now().astimezone(KST)
        odno = format_odno(next(self._odno))
        self.placed.append(DailyCcldRow(
            ord_dt=now.date(), ord_tmd=now.time().replace(microsecond=0), ord_gno_brno="06010", odno=odno,
            orgn_odno=orgn, side=side, side_name="", ord_dvsn_cd=ord_dvsn, ord_dvsn_name="", symbol=symbol, name="",
            ord_qty=qty, ord_unpr=price, tot_ccld_qty=0, tot_ccld_amt=0, avg_prvs=Decimal(0), rmn_qty=qty,
            cncl_yn=False, cncl_cfrm_qty=0, rjct_qty=0, ccld_cndt_name="", excg_id_dvsn_cd="KRX"))
        return OrderAck(odno=odno.lstrip("0"), odno_raw=odno, org_no="06010", ord_time=now.time(), msg_cd="APBK0013",
                        msg1="주문 전송 완료 되었습니다.", raw={"rt_cd": "0"})

    def _request(self, side: Side, symbol: str, qty: int, ord_dvsn: str, price: int,
                 orgn: str | None = None) -> OrderAck:
        self.requests += 1
        outcome = self._script.popleft() if self._script else Outcome.ACK
        if outcome is Outcome.NOT_SENT:
            raise TransportError("ConnectError", sent=False)
        if outcome is Outcome.REJECT:
            raise BusinessRejected("rejected", msg_cd="APBK0952", msg1="주문가능금액을 초과 했습니다")
        if outcome is Outcome.LOST:
            raise OutcomeUnknown("order sent, no answer", cause="ReadTimeout")
        ack = self._take(side, symbol, qty, ord_dvsn, price, orgn)
        if outcome is Outcome.TAKEN_NO_ANSWER:
            raise OutcomeUnknown("order sent, no answer", cause="ReadTimeout")
        return ack

    async def place(self, side: Side, symbol: str, qty: int, ord_dvsn: str, price: int, *,
                    slot_taken: bool) -> OrderAck:
        if not slot_taken:
            self.slots += 1
        return self._request(side, symbol, qty, ord_dvsn, price)

    def _order(self, odno: str) -> DailyCcldRow:
        return next(r for r in self.placed if r.odno == format_odno(odno))

    async def cancel(self, orgn_odno: str, org_no: str, qty: Qty, *, ord_dvsn: str) -> OrderAck:
        o = self._order(orgn_odno)
        ack = self._request(o.side, o.symbol, o.rmn_qty if qty == "all" else qty, ord_dvsn, 0, orgn=o.odno)
        self.cancel_rest(o.odno)
        return ack

    async def modify(self, orgn_odno: str, org_no: str, *, ord_dvsn: str, price: int, qty: Qty) -> OrderAck:
        o = self._order(orgn_odno)
        return self._request(o.side, o.symbol, o.rmn_qty if qty == "all" else qty, ord_dvsn, price, orgn=o.odno)

    async def orders_of_day(self, day: date, *, ordered_since: time | None) -> list[DailyCcldRow]:
        return [r for r in reversed(self.placed) if r.ord_dt == day]

    async def holdings(self) -> Balance:
        held: dict[str, int] = {}
        for r in self.placed:
            if not r.orgn_odno:
                held[r.symbol] = held.get(r.symbol, 0) + (r.tot_ccld_qty if r.side is Side.BUY else -r.tot_ccld_qty)
        rows = [BalanceRow(symbol=s, name="", trad_dvsn_name="", hldg_qty=q, ord_psbl_qty=q, bfdy_buy_qty=0,
                           bfdy_sll_qty=0, thdt_buy_qty=0, thdt_sll_qty=0, pchs_avg_pric=Decimal(0), pchs_amt=0,
                           prpr=0, evlu_amt=0, evlu_pfls_amt=0, evlu_pfls_rt=Decimal(0), loan_dt=None)
                for s, q in held.items() if q]
        return Balance(rows, None)

    async def buying_power(self) -> tuple[Decimal, dict[str, int]]:
        return self.cash, {r.symbol: r.ord_psbl_qty for r in (await self.holdings()).rows}

    # --- the market -----------------------------------------------------------------------------------

    def fill(self, odno: str, qty: int, price: int) -> None:
        i = next(i for i, r in enumerate(self.placed) if r.odno == format_odno(odno))
        r = self.placed[i]
        self.placed[i] = replace(r, tot_ccld_qty=r.tot_ccld_qty + qty, tot_ccld_amt=r.tot_ccld_amt + qty * price,
                                 rmn_qty=r.rmn_qty - qty)

    def cancel_rest(self, odno: str) -> None:
        i = next(i for i, r in enumerate(self.placed) if r.odno == format_odno(odno))
        r = self.placed[i]
        self.placed[i] = replace(r, cncl_yn=True, cncl_cfrm_qty=r.rmn_qty, rmn_qty=0)

    def orders_for(self, symbol: str, side: Side, qty: int) -> list[DailyCcldRow]:
        return [r for r in self.placed if (r.symbol, r.side, r.ord_qty) == (symbol, side, qty) and not r.orgn_odno]


def at_kst(day: date, t: time) -> datetime:
    return datetime.combine(day, t, KST)
