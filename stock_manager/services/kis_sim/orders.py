"""Orders and executions as the simulated broker keeps them.

One ``Order`` per ODNO, including the rows that modify and cancel requests create (KIS gives
those their own order numbers, linked by ``orgn_odno``).  Quantities are kept as separate
buckets so that every KIS field (``tot_ccld_qty``, ``rmn_qty``, ``cncl_cfrm_qty``, ``rjct_qty``)
is a plain read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Literal

Side = Literal["BUY", "SELL"]


class OrderStatus(StrEnum):
    ACCEPTED = "ACCEPTED"
    PARTIAL = "PARTIAL"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"  # remaining quantity cancelled (by request or IOC/FOK)
    REVISED = "REVISED"  # remaining quantity moved to a modify order
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"  # still open at the close
    CONFIRMED = "CONFIRMED"  # a cancel request row: done once the exchange confirms it


class OrderKind(StrEnum):
    NEW = "NEW"
    MODIFY = "MODIFY"
    CANCEL = "CANCEL"


# ORD_DVSN codes whose price field is ignored (the order carries no price of its own).
PRICELESS = frozenset({"01", "03", "04", "13", "14", "15", "16"})
# 장후 시간외 종가: the price field is ignored too, but the price is known (the day's close), so a
# buying-power query prices it like a limit order rather than at the upper limit.
CLOSE_PRICE_DVSN = "06"
ORD_DVSN_NAMES: dict[str, str] = {
    "00": "지정가",
    "01": "시장가",
    "02": "조건부지정가",
    "03": "최유리지정가",
    "04": "최우선지정가",
    "05": "장전 시간외",
    "06": "장후 시간외",
    "07": "시간외 단일가",
    "11": "IOC지정가",
    "12": "FOK지정가",
    "13": "IOC시장가",
    "14": "FOK시장가",
    "15": "IOC최유리",
    "16": "FOK최유리",
    "21": "중간가",
    "22": "스톱지정가",
    "23": "중간가IOC",
    "24": "중간가FOK",
}
# ODER_COND of the fill notice: 0 none, 1 IOC, 2 FOK.
ORDER_COND: dict[str, str] = {"11": "1", "13": "1", "15": "1", "12": "2", "14": "2", "16": "2"}


@dataclass(slots=True, eq=False)
class Order:
    seq: int
    odno: str
    trade_date: date
    account: str
    app_key: str
    symbol: str
    symbol_name: str
    side: Side
    ord_dvsn: str
    qty: int
    price: int
    received_at: datetime
    ord_tmd: str
    branch: str
    kind: OrderKind = OrderKind.NEW
    orgn_odno: str = ""
    # working limit for matching; market buys use the upper limit, market sells the lower one
    limit: int = 0
    aggressive: bool = False
    cond: str = "0"
    filled_qty: int = 0
    filled_amt: int = 0
    cancelled_qty: int = 0
    revised_qty: int = 0
    rejected_qty: int = 0
    expired_qty: int = 0
    fee: int = 0
    tax: int = 0
    reserved_cash: int = 0
    status: OrderStatus = OrderStatus.ACCEPTED
    # out of the book (filled, cancelled, ...); heaps drop such entries lazily
    dead: bool = False
    # wall-clock arrival (epoch seconds), so latency can be measured against other processes
    received_wall: float = 0.0
    children: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.qty - self.filled_qty - self.cancelled_qty - self.revised_qty - self.rejected_qty - self.expired_qty

    @property
    def live(self) -> bool:
        return self.kind is not OrderKind.CANCEL and not self.dead and self.remaining > 0

    @property
    def avg_price(self) -> float:
        return self.filled_amt / self.filled_qty if self.filled_qty else 0.0

    def settle_status(self) -> None:
        """Derive the status from the quantity buckets after any change."""
        if self.kind is OrderKind.CANCEL:
            self.status = OrderStatus.CONFIRMED
        elif self.remaining > 0:
            self.status = OrderStatus.PARTIAL if self.filled_qty else OrderStatus.ACCEPTED
        elif self.filled_qty == self.qty:
            self.status = OrderStatus.FILLED
        elif self.rejected_qty:
            self.status = OrderStatus.REJECTED
        elif self.revised_qty:
            self.status = OrderStatus.REVISED
        elif self.cancelled_qty:
            self.status = OrderStatus.CANCELLED
        elif self.expired_qty:
            self.status = OrderStatus.EXPIRED


@dataclass(slots=True, frozen=True)
class Fill:
    exec_seq: int
    odno: str
    trade_date: date
    account: str
    symbol: str
    side: Side
    qty: int
    price: int
    ts: datetime
    fee: int
    tax: int
