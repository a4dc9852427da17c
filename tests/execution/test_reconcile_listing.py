"""What the reconciler asks of the broker's list and how it reads it, on a real database:
- the list reaches back to the oldest order still open (less a margin), not the whole day;
- an order is compared with the list only as it stood when the list was asked for: a fill noticed
  or an ack linked after that is newer than the list, not a mismatch."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from stock_manager.services.execution.context import Exec, ExecutionConfig
from stock_manager.services.execution.funds import FundsView
from stock_manager.services.execution.notices import NoticeApplier
from stock_manager.services.execution.ports import InMemoryBroker
from stock_manager.services.execution.reconciler import Reconciler
from stock_manager.services.execution.submitter import Submitter
from stock_manager.shared.clock import KST, ManualClock, SystemClock
from stock_manager.shared.db.listen import Waker
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.kis.models import DailyCcldRow, Side
from stock_manager.shared.market_rules import trade_date

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


def make_reconciler(pool: Pool, clock: SystemClock | ManualClock) -> Reconciler:
    cfg = ExecutionConfig()
    # the parts tested here never call the broker: lists are handed to them
    ex = Exec(pool, InMemoryBroker(clock), clock, cfg, "test", Waker())
    notices = NoticeApplier(ex)
    return Reconciler(ex, notices, Submitter(ex, FundsView(ex.fees), notices), FundsView(ex.fees))


async def test_the_list_reaches_back_to_the_oldest_open_order(admin_pool: Pool) -> None:
    now = datetime(2026, 11, 23, 13, 0, tzinfo=KST)
    reconciler = make_reconciler(admin_pool, ManualClock(now))
    day = now.date()
    margin = timedelta(seconds=reconciler.ex.cfg.listing_margin_s)
    assert margin == timedelta(minutes=5)
    # nothing open: two passes back, for orders placed elsewhere
    lookback = timedelta(seconds=2 * reconciler.ex.cfg.reconcile_s)
    assert await reconciler._listing_since(day) == (now - lookback - margin).time()

    async def attempt(order_id: int, at: datetime | None) -> None:
        async with admin_pool.connection() as conn:
            await conn.execute("UPDATE trade.orders SET attempt_market_ts = %s WHERE order_id = %s", (at, order_id))

    old = await linked_order(admin_pool, day, "old", "0000000201", 10)
    await attempt(old, datetime(2026, 11, 23, 10, 30, tzinfo=KST))
    recent = await linked_order(admin_pool, day, "recent", "0000000202", 10)
    await attempt(recent, datetime(2026, 11, 23, 12, 55, tzinfo=KST))
    assert await reconciler._listing_since(day) == time(10, 25)  # the oldest open one, less the margin
    async with admin_pool.connection() as conn:  # once it is filled it no longer holds the list back
        await conn.execute("UPDATE trade.orders SET filled_qty = 10, filled_amount = 700000, status = 'FILLED'"
                           " WHERE order_id = %s", (old,))
    assert await reconciler._listing_since(day) == time(12, 50)
    await attempt(recent, datetime(2026, 11, 23, 0, 2, tzinfo=KST))
    assert await reconciler._listing_since(day) is None  # the margin reaches the day before: the whole day
    await attempt(recent, None)
    assert await reconciler._listing_since(day) is None  # no attempt time: the whole day


async def test_orders_changed_after_the_list_wait_for_the_next_pass(admin_pool: Pool) -> None:
    clock = SystemClock()
    reconciler = make_reconciler(admin_pool, clock)
    reconciler.fence = await reconciler.take_lease()  # its writes are made under the lease
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
