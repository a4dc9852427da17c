"""Order/fill notices (H0STCNI0/H0STCNI9) as rows of ``market.broker_notices``.

PriceSync holds the app key's one WebSocket session, so it relays the account's notices for
Execution.  The adapter has already decrypted them and dropped the HTS ID, the account number and
the holder's name; this mapping keeps it that way: ``fields`` is built from an explicit list of
non-secret attributes, never from the record as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any, Final

from stock_manager.shared.kis.models import format_odno
from stock_manager.shared.kis.ws_frames import ExecutionNotice, RctfCls


class NoticeKind(StrEnum):
    FILL = "FILL"
    ACCEPTED = "ACCEPTED"
    MODIFIED = "MODIFIED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    IOC_CANCELLED = "IOC_CANCELLED"


def kind_of(n: ExecutionNotice) -> NoticeKind:
    """CNTG_YN=2 is a fill whatever else it says; then rejection, IOC/FOK remainder, modify/cancel."""
    if n.is_fill:
        return NoticeKind.FILL
    if n.is_reject:
        return NoticeKind.REJECTED
    if n.is_ioc_cancel:
        return NoticeKind.IOC_CANCELLED
    if n.rctf_cls is RctfCls.CANCEL:
        return NoticeKind.CANCELLED
    if n.rctf_cls is RctfCls.MODIFY:
        return NoticeKind.MODIFIED
    return NoticeKind.ACCEPTED


class UnrelayableNotice(ValueError):
    """A notice the table cannot hold (e.g. a non-numeric order number); logged, never guessed at."""


# The attributes of ExecutionNotice that may be stored.  Anything added to the model later stays
# out until it is listed here.
_SAFE_FIELDS: Final = (
    "odno",
    "oodno",
    "rctf_cls",
    "ord_kind",
    "ord_cond",
    "symbol",
    "qty",
    "price",
    "is_fill",
    "is_reject",
    "acpt_yn",
    "branch_no",
    "order_qty",
    "order_price",
    "cond_price",
    "exchange",
    "name",
    "field_count",
)


@dataclass(frozen=True, slots=True)
class NoticeRow:
    trade_date: date
    tr_id: str
    kind: NoticeKind
    odno: str
    oodno: str | None
    side: str
    symbol: str
    qty: int
    price: int
    exec_time: time
    order_qty: int | None
    order_price: int | None
    ord_dvsn: str | None
    fields: dict[str, Any]
    received_ts: datetime

    def params(self) -> dict[str, Any]:
        return {
            "received_ts": self.received_ts,
            "trade_date": self.trade_date,
            "tr_id": self.tr_id,
            "kind": self.kind.value,
            "odno": self.odno,
            "oodno": self.oodno,
            "side": self.side,
            "symbol": self.symbol,
            "qty": self.qty,
            "price": self.price,
            "exec_time": self.exec_time,
            "order_qty": self.order_qty,
            "order_price": self.order_price,
            "ord_dvsn": self.ord_dvsn,
        }


def _pad(odno: str | None, what: str) -> str | None:
    if odno is None or not odno.strip():
        return None
    text = format_odno(odno.strip())
    if not text.isdigit() or len(text) != 10:
        raise UnrelayableNotice(f"{what} is not a number of at most 10 digits")
    return text


def _json_value(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, time | date):
        return value.isoformat()
    return value


def to_row(n: ExecutionNotice, *, tr_id: str, trade_date: date, received_ts: datetime) -> NoticeRow:
    odno = _pad(n.odno, "ODER_NO")
    if odno is None:
        raise UnrelayableNotice("ODER_NO is empty")
    oodno = _pad(n.oodno, "OODER_NO")
    if oodno is not None and int(oodno) == 0:
        oodno = None
    if n.qty < 0 or n.price < 0:
        raise UnrelayableNotice("negative quantity or price")
    fields = {name: _json_value(getattr(n, name)) for name in _SAFE_FIELDS}
    fields["side"] = n.side.value
    fields["time"] = n.time.isoformat()
    return NoticeRow(
        trade_date=trade_date,
        tr_id=tr_id,
        kind=kind_of(n),
        odno=odno,
        oodno=oodno,
        side=n.side.value,
        symbol=n.symbol,
        qty=n.qty,
        price=n.price,
        exec_time=n.time,
        order_qty=n.order_qty,
        order_price=n.order_price,
        ord_dvsn=n.ord_kind or None,
        fields=fields,
        received_ts=received_ts,
    )
