"""Broker notices (relayed by PriceSync into ``market.broker_notices``) into fills and statuses.

Exactly once, however often and in whatever order notices come:
- a notice is applied by whichever Execution first logs it in ``trade.notice_log``;
- a fill's ``exec_key`` is its content (order number, time, quantity, price), so a duplicated
  notice hits the UNIQUE (order_id, exec_key) and is recorded as DUPLICATE;
- a notice for an order whose broker number is not linked yet is an ORPHAN and is applied the
  moment the number is linked (``apply_orphans``);
- once the reconciler has added fills the notices never reported, a late notice that would push
  the order past the broker's own total is SUPERSEDED instead of counted twice.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from loguru import logger
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from stock_manager.services.execution.context import SERVICE, Exec, Q
from stock_manager.services.execution.funds import FundsView
from stock_manager.services.execution.orders import UNFENCED, Fence, apply, fence_params, fenced
from stock_manager.services.execution.rules import fill_costs, order_status
from stock_manager.shared import events
from stock_manager.shared.clock import KST
from stock_manager.shared.market_rules import Market
from stock_manager.shared.trade_states import (
    ORDER_AWAITING_BROKER,
    ORDER_TABLE,
    QUANTITY_EVENT,
    OrderEvent,
    OrderStatus,
)

Conn = AsyncConnection[DictRow]


class NoticeApplier:
    def __init__(self, ex: Exec, funds: FundsView | None = None) -> None:
        self.ex = ex
        self.funds = funds
        self._floor = -1

    async def drain(self, limit: int = 500) -> int:
        """Apply every notice not yet logged; returns how many were looked at."""
        total = 0
        while True:
            async with self.ex.pool.connection() as conn:
                if self._floor < 0:
                    row = await (await conn.execute(Q["max_logged_notice"])).fetchone()
                    # a margin below the newest logged id: ids can commit out of order
                    self._floor = max(0, int(row["n"]) - 10_000) if row else 0
                notices = await (await conn.execute(Q["unapplied_notices"],
                                                    {"floor": self._floor, "limit": limit})).fetchall()
                for n in notices:
                    await self._claim_and_apply(conn, n)
            total += len(notices)
            if notices:
                self._floor = max(self._floor, int(notices[-1]["notice_id"]) - 1_000)
            if len(notices) < limit:
                return total

    async def _claim_and_apply(self, conn: Conn, n: dict[str, Any]) -> None:
        """Apply one notice in a savepoint: one that fails is logged and left for the next drain
        (it is not logged in notice_log, so nothing is lost), and never holds back the others."""
        try:
            async with conn.transaction():
                claimed = await (await conn.execute(Q["claim_notice"], {"notice_id": n["notice_id"]})).fetchone()
                if claimed is not None:
                    await self._apply(conn, n)
        except Exception as e:
            logger.opt(exception=e).error("notice {} ({} of order {}) could not be applied, retried at the next "
                                          "drain: {}", n["notice_id"], n["kind"], n["odno"], type(e).__name__)
            self.ex.count("notices_failed")

    async def apply_orphans(self, conn: Conn, trade_date: date, odno: str) -> None:
        """Apply the notices that came before their order's broker number was known."""
        for n in await (await conn.execute(Q["orphans_for"], {"trade_date": trade_date, "odno": odno})).fetchall():
            await self._apply(conn, n)

    async def _apply(self, conn: Conn, n: dict[str, Any]) -> None:
        kind = n["kind"]
        order = await self._order_for(conn, n)
        status, fill_id, detail = "IGNORED", None, kind
        if kind == "FILL":
            if order is None:
                status, detail = "ORPHAN", "order not known yet"
            else:
                status, fill_id, detail = await self._apply_fill(conn, order, n)
        elif kind == "REJECTED":
            if order is None:
                status, detail = "ORPHAN", "order not known yet"
            else:
                status, detail = await self._apply_reject(conn, order, n)
        elif kind in ("CANCELLED", "MODIFIED", "IOC_CANCELLED"):
            # the reconciler reads the broker's cancelled quantity; this only makes it look sooner
            self.ex.reconcile_now.set()
            status = "APPLIED"
        await conn.execute(Q["log_notice"], {"notice_id": n["notice_id"], "status": status,
                                             "order_id": order["order_id"] if order else None,
                                             "fill_id": fill_id, "detail": detail})

    async def _order_for(self, conn: Conn, n: dict[str, Any]) -> dict[str, Any] | None:
        row = await (await conn.execute(Q["order_by_broker_no"],
                                        {"trade_date": n["trade_date"], "odno": n["odno"]})).fetchone()
        if row is None:
            return None
        return await (await conn.execute(Q["order_for_update"], {"order_id": row["order_id"]})).fetchone()

    async def _apply_fill(self, conn: Conn, order: dict[str, Any], n: dict[str, Any]) -> tuple[str, int | None, str]:
        qty, price = int(n["qty"]), Decimal(n["price"])
        totals = await (await conn.execute(Q["fill_totals"], {"order_id": order["order_id"]})).fetchone()
        assert totals is not None
        have = int(totals["qty"])
        if totals["reconciled"] and have + qty > int(order["broker_filled_qty"]):
            return "SUPERSEDED", None, "already counted from the broker's order list"
        if qty <= 0 or have + qty + int(order["cancelled_qty"]) > int(order["qty"]):
            await events.emit(conn, SERVICE, "FillAnomaly",
                              f"notice fill {qty}@{price} would exceed order {order['order_id']}",
                              level="ERROR", symbol=order["symbol"], order_id=order["order_id"])
            return "IGNORED", None, "would exceed the order quantity"
        exec_time: time | None = n["exec_time"]
        ts = datetime.combine(n["trade_date"], exec_time, KST) if exec_time else self.ex.clock.now()
        fee, tax = fill_costs(order["side"], qty, price, await _market_of(conn, order["symbol"]),
                              n["trade_date"], self.ex.fees)
        exec_key = f"n:{n['odno']}:{exec_time.strftime('%H%M%S') if exec_time else '-'}:{qty}:{price}"
        row = await (await conn.execute(Q["insert_fill"], {
            **UNFENCED, "order_id": order["order_id"], "exec_key": exec_key, "symbol": order["symbol"],
            "side": order["side"], "qty": qty, "price": price, "fee": fee, "tax": tax, "ts": ts, "source": "NOTICE",
        })).fetchone()
        if row is None:
            return "DUPLICATE", None, exec_key
        if self.funds is not None:
            self.funds.on_fill(order["side"], order["symbol"], qty, price * qty, fee + tax)
        await self.refresh_totals(conn, order)
        logger.info("fill {} {} {} {}@{} (order {})", row["fill_id"], order["side"], order["symbol"], qty, price,
                    order["broker_order_no"])
        self.ex.count("fills_notice")
        return "APPLIED", int(row["fill_id"]), exec_key

    async def _apply_reject(self, conn: Conn, order: dict[str, Any], n: dict[str, Any]) -> tuple[str, str]:
        status = order["status"]
        if (status, OrderEvent.REJECTED) not in ORDER_TABLE:
            return "IGNORED", f"reject notice for an order already {status}"
        reason = "rejected by the exchange (notice)"
        if await apply(conn, int(order["order_id"]), OrderEvent.REJECTED, status, actor=self.ex.owner,
                       market_ts=self.ex.clock.now(), reason=reason) is None:
            return "IGNORED", f"reject notice for an order that moved on from {status}"
        await events.emit(conn, SERVICE, "OrderRejected", reason, level="WARN",
                          symbol=order["symbol"], intent_id=order["intent_id"], order_id=order["order_id"])
        return "APPLIED", "rejected"

    async def refresh_totals(self, conn: Conn, order: dict[str, Any], cancelled: int | None = None,
                             rejected: bool = False, fence: Fence | None = None) -> OrderStatus:
        """Recompute filled quantity/amount from trade.fills and move the status where the
        quantities say, if the order's state machine has that step.  The caller holds the row's lock
        (``order_for_update``); ``fence`` is the reconciler's."""
        totals = await (await conn.execute(Q["fill_totals"], {"order_id": order["order_id"]})).fetchone()
        assert totals is not None
        cancelled_qty = int(order["cancelled_qty"]) if cancelled is None else cancelled
        quantities = {"filled_qty": int(totals["qty"]), "filled_amount": totals["amount"],
                      "cancelled_qty": cancelled_qty}
        current = OrderStatus(order["status"])
        target = order_status(int(order["qty"]), quantities["filled_qty"], cancelled_qty, rejected)
        event = QUANTITY_EVENT.get(target) if target is not current else None
        if event is not None and (current, event) in ORDER_TABLE:
            moved = await apply(conn, int(order["order_id"]), event, current, actor=self.ex.owner, fence=fence,
                                market_ts=self.ex.clock.now(), **quantities)
            if moved is not None:
                return target
        await fenced(conn, "set_order_totals", {**fence_params(fence),
                                                "order_id": order["order_id"], "status": current, **quantities})
        if target is not current and not (current in ORDER_AWAITING_BROKER and target is OrderStatus.SUBMITTED):
            await events.emit(conn, SERVICE, "StatusConflict", f"order {order['order_id']} is {current} but the "
                              f"quantities say {target}", level="WARN", symbol=order["symbol"],
                              order_id=order["order_id"])
        return current


async def _market_of(conn: Conn, symbol: str) -> Market:
    row = await (await conn.execute("SELECT market FROM market.symbols WHERE symbol = %s", (symbol,))).fetchone()
    return Market(row["market"]) if row else Market.KOSPI
