"""The reconciler compares an order with the broker's list only as the order stood when the list was
asked for: a fill noticed or an ack linked after that is newer than the list, not a mismatch."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from typing import Any, cast

from services.execution.context import Exec, ExecutionConfig
from services.execution.funds import FundsView
from services.execution.notices import NoticeApplier
from services.execution.reconciler import Reconciler
from services.execution.submitter import Submitter
from shared.broker import Broker
from shared.clock import SystemClock
from shared.db.listen import Waker
from shared.db.pool import Pool
from shared.kis.models import DailyCcldRow, Side
from shared.market_rules import trade_date

SYMBOL = "005930"


def broker_row(day: date, odno: str, qty: int, filled: int, price: int = 70_000) -> DailyCcldRow:
    return DailyCcldRow(
        ord_dt=day, ord_tmd=time(10, 0), ord_gno_brno="06010", odno=odno, orgn_odno=None, side=Side.BUY,
        side_name="매수", ord_dvsn_cd="00", ord_dvsn_name="지정가", symbol=SYMBOL, name="삼성전자", ord_qty=qty,
        ord_unpr=price, tot_ccld_qty=filled, tot_ccld_amt=filled * price, avg_prvs=Decimal(price),
        rmn_qty=qty - filled, cncl_yn=False, cncl_cfrm_qty=0, rjct_qty=0, ccld_cndt_name="없음",
        excg_id_dvsn_cd="KRX")


async def linked_order(pool: Pool, day: date, key: str, odno: str, qty: int) -> int:
    async with pool.connection() as conn:
        intent = await (await conn.execute(
            "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price,"
            " status) VALUES (%s, %s, 'BUY', 'ENTRY', %s, 'LMT', 70000, 'NEW') RETURNING intent_id",
            (key, SYMBOL, qty))).fetchone()
        assert intent is not None
        order = await (await conn.execute(
            "INSERT INTO trade.orders (intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn, limit_price,"
            " status, submit_attempts) VALUES (%s, %s, %s, 'BUY', %s, 'LMT', '00', 70000, 'PENDING_SUBMIT', 1)"
            " RETURNING order_id", (intent["intent_id"], day, SYMBOL, qty))).fetchone()
        assert order is not None
        await conn.execute("UPDATE trade.orders SET status = 'SUBMITTED', broker_order_no = %s,"
                           " submitted_ts = clock_timestamp(), updated_ts = clock_timestamp() WHERE order_id = %s",
                           (odno, order["order_id"]))
        return int(order["order_id"])


async def order_row(pool: Pool, order_id: int) -> dict[str, Any]:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT * FROM trade.orders WHERE order_id = %s", (order_id,))).fetchone()
    assert row is not None
    return dict(row)


async def test_orders_changed_after_the_list_wait_for_the_next_pass(admin_pool: Pool) -> None:
    clock = SystemClock()
    cfg = ExecutionConfig()
    # _sync_orders never calls the broker: the list is handed to it
    ex = Exec(admin_pool, cast(Broker, None), clock, cfg, "test", Waker())
    notices = NoticeApplier(ex)
    reconciler = Reconciler(ex, notices, Submitter(ex, FundsView(cfg.commission_rate), notices),
                            FundsView(cfg.commission_rate))
    day = trade_date(clock.now())

    settled = await linked_order(admin_pool, day, "settled", "0000000101", 10)
    noticed = await linked_order(admin_pool, day, "noticed", "0000000102", 10)
    listed_before = await reconciler._db_now()
    # after the list was asked for: a fill of 4 noticed on one order, another order acked
    async with admin_pool.connection() as conn:
        await conn.execute(
            "INSERT INTO trade.fills (order_id, exec_key, symbol, side, qty, price, fee, tax, ts, source)"
            " VALUES (%s, 'n:1', %s, 'BUY', 4, 70000, 42, 0, now(), 'NOTICE')", (noticed, SYMBOL))
        await conn.execute("UPDATE trade.orders SET filled_qty = 4, filled_amount = 280000, status = 'PARTIAL',"
                           " updated_ts = clock_timestamp() WHERE order_id = %s", (noticed,))
    late = await linked_order(admin_pool, day, "late", "0000000103", 5)
    # the list: made before those changes; the settled order filled in full (its notices lost)
    listing = [broker_row(day, "0000000101", 10, 10), broker_row(day, "0000000102", 10, 0)]
    done = {"resolved": 0, "resent": 0, "corrected": 0, "fills_added": 0}

    await reconciler._sync_orders(day, listing, listed_before, False, done)

    assert (await order_row(admin_pool, settled))["status"] == "FILLED"  # the list still rules what it saw
    assert done["fills_added"] == 1
    n = await order_row(admin_pool, noticed)
    assert (n["status"], n["filled_qty"]) == ("PARTIAL", 4)  # not pulled back to the older picture
    assert (await order_row(admin_pool, late))["status"] == "SUBMITTED"
    async with admin_pool.connection() as conn:
        mismatches = await (await conn.execute(
            "SELECT count(*) AS n FROM ops.events WHERE kind = 'ReconcileMismatch'")).fetchone()
    assert mismatches is not None and mismatches["n"] == 0

    # the next pass, with a list made after those changes, sees them and agrees
    listed_before = await reconciler._db_now()
    listing = [broker_row(day, "0000000101", 10, 10), broker_row(day, "0000000102", 10, 4),
               broker_row(day, "0000000103", 5, 0)]
    done = dict.fromkeys(done, 0)
    await reconciler._sync_orders(day, listing, listed_before, True, done)
    assert done == {"resolved": 0, "resent": 0, "corrected": 0, "fills_added": 0}
