"""Exits never judge a stale price (issue #11): REST quotes for stale ones, REDUCING while PriceSync is
stale, ACTIVE again when it is back (never over an operator's HALT or FLATTEN).

The pure rules first; then Strategy on the real database with its real KIS client (shared token and
budget, as ``sm_strategy``) against the simulator, PriceSync and Execution played through their
tables as in the other Strategy tests; last, real processes: the simulator, PriceSync (stalled with
SIGSTOP, so its heartbeat and its prices stop together) and Strategy.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from stock_manager import status
from stock_manager.dashboard.alerts import AlertConfig, Alerter, Webhook
from stock_manager.services.kis_sim.universe import build_universe
from stock_manager.services.strategy.app import StrategyApp
from stock_manager.services.strategy.config import Params
from stock_manager.services.strategy.queries import Q
from stock_manager.services.strategy.quotes import BrokerQuotes, QuoteSource
from stock_manager.services.strategy.rules.exits import (
    Holding,
    PriceSource,
    Quote,
    evaluate_exit,
    quote_age_limit_s,
    quote_is_stale,
)
from stock_manager.services.strategy.rules.feed import (
    FEED_TRANSITIONS,
    Feed,
    FeedView,
    Standing,
    StateMove,
    feed_move,
    judge_feed,
    standing,
)
from stock_manager.services.strategy.runtime import monotonic
from stock_manager.services.strategy.workers import Worker
from stock_manager.shared.broker import Broker, open_broker
from stock_manager.shared.clock import ManualClock
from stock_manager.shared.db.pool import Pool, open_pool
from stock_manager.shared.logging import Redactor
from stock_manager.shared.market_rules import round_to_tick
from stock_manager.shared.settings import Mode, Settings
from stock_manager.shared.trade_states import WorkerStatus
from tests.ops.support import Receiver
from tests.strategy.conftest import make_app
from tests.strategy.flow import row, rows, sell, to_scan
from tests.strategy.support import events, execute, intents
from tests.support.pg import TestDb
from tests.support.sim import MONDAY_10AM, ServiceProcess, SimProcess, seed_symbols, service_env

D = Decimal
SYMBOL = "005930"
NOW = datetime.fromisoformat(MONDAY_10AM)  # the simulator's day, mid-session
P = Params()

# --- the pure rules ----------------------------------------------------------------------------


def test_the_quote_age_limit_is_market_seconds_never_under_the_wall_floor() -> None:
    assert quote_age_limit_s(30, 3, speed=1.0) == 30
    assert quote_age_limit_s(30, 3, speed=0.1) == 30
    assert quote_age_limit_s(30, 3, speed=60.0) == 180  # 3 wall seconds at 60x
    assert quote_age_limit_s(30, 0, speed=60.0) == 30


def test_a_quote_is_stale_past_the_limit_or_when_there_is_none() -> None:
    assert quote_is_stale(None, NOW, 30)
    assert not quote_is_stale(NOW - timedelta(seconds=30), NOW, 30)
    assert quote_is_stale(NOW - timedelta(seconds=30.5), NOW, 30)
    assert not quote_is_stale(NOW + timedelta(seconds=2), NOW, 30)  # another clock a little ahead


def test_an_exit_decision_records_where_its_price_came_from() -> None:
    h = Holding(qty=10, avg_price=D(10_000), entry_ts=NOW - timedelta(minutes=5), high_water=D(10_000))
    d = evaluate_exit(h, Quote(D(9_700), None, NOW - timedelta(seconds=2), PriceSource.REST), P, NOW)
    assert d.reason is not None and d.reason.value == "STOP_LOSS"
    assert d.inputs["price_source"] == "REST" and d.inputs["quote_age_s"] == 2.0
    d = evaluate_exit(h, Quote(D(10_000), None, NOW), P, NOW)
    assert d.inputs["price_source"] == "PRICESYNC"


@pytest.mark.parametrize(("live", "up", "expected"), [
    (1.0, 0.0, Feed.FRESH),
    (20.0, 0.0, Feed.FRESH),
    (None, 5.0, None),  # just started: PriceSync may not have beaten yet
    (25.0, 5.0, None),
    (None, 20.0, Feed.STALE),
    (20.5, 3600.0, Feed.STALE),
])
def test_pricesync_is_judged_on_its_heartbeat_after_a_grace_from_start(live: float | None, up: float,
                                                                        expected: Feed | None) -> None:
    assert judge_feed(FeedView(live, live), stale_s=20, up_s=up) is expected


STALE = FeedView(live_age_s=None, any_age_s=31.4)
FRESH = FeedView(live_age_s=0.6, any_age_s=0.6)


@pytest.mark.parametrize(("state", "reason", "feed", "view", "expected"), [
    ("ACTIVE", "initial", Feed.STALE, STALE, StateMove("REDUCING", "PRICESYNC_STALE: no heartbeat for 31s")),
    ("ACTIVE", None, Feed.STALE, FeedView(None, None), StateMove("REDUCING", "PRICESYNC_STALE: no heartbeat yet")),
    ("REDUCING", "PRICESYNC_STALE: no heartbeat for 31s", Feed.FRESH, FRESH,
     StateMove("ACTIVE", "PRICESYNC_RECOVERED: heartbeat 1s old")),
    ("ACTIVE", "initial", Feed.FRESH, FRESH, None),
    ("REDUCING", "PRICESYNC_STALE: no heartbeat for 31s", Feed.STALE, STALE, None),
    # the operator's states, and another rule's, are never moved
    ("HALTED", "operator halt", Feed.STALE, STALE, None),
    ("HALTED", "operator halt", Feed.FRESH, FRESH, None),
    ("HALTED", "PRICESYNC_STALE: typed by hand", Feed.FRESH, FRESH, None),
    ("REDUCING", "FLATTEN: operator flatten", Feed.STALE, STALE, None),
    ("REDUCING", "FLATTEN: operator flatten", Feed.FRESH, FRESH, None),
    ("HALTED", "POSITION_DRIFT: 005930 broker 10 / ours 5", Feed.FRESH, FRESH, None),
])
def test_trading_state_moves_on_pricesync_liveness(state: str, reason: str | None, feed: Feed, view: FeedView,
                                                    expected: StateMove | None) -> None:
    assert feed_move(state, reason, feed, view) == expected


def test_only_two_moves_exist_and_only_strategy_s_own_reducing_is_undone() -> None:
    assert FEED_TRANSITIONS == {(Standing.ACTIVE, Feed.STALE): "REDUCING",
                                (Standing.REDUCING_STALE, Feed.FRESH): "ACTIVE"}
    assert standing("REDUCING", "PRICESYNC_STALE: no heartbeat for 3s") is Standing.REDUCING_STALE
    assert standing("REDUCING", "FLATTEN: PRICESYNC_STALE") is Standing.OTHER
    assert standing("REDUCING", None) is Standing.OTHER


# --- Strategy on the database, its KIS client against the simulator ----------------------------


class Counting:
    """The real quote source, counting what Strategy asks of it."""

    def __init__(self, inner: QuoteSource) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.prices: list[Decimal] = []

    async def price(self, symbol: str) -> Decimal:
        self.calls.append(symbol)
        p = await self.inner.price(symbol)
        self.prices.append(p)
        return p


class FixedQuotes:
    def __init__(self, price: int) -> None:
        self.price_now = D(price)
        self.calls = 0

    async def price(self, symbol: str) -> Decimal:
        self.calls += 1
        return self.price_now


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    """The simulator as a real process, its market at Monday 10:00 (its own: the tests read its clock)."""
    s = SimProcess(log_dir=tmp_path).start()
    try:
        s.clock()
        yield s
    finally:
        s.stop()


@pytest.fixture
async def broker(db: TestDb, sim: SimProcess, strategy_pool: Pool) -> AsyncIterator[Broker]:
    """Strategy's KIS client as the service builds it: shared token and budget, as ``sm_strategy``."""
    settings = Settings(database_url=db.admin_url, sm_mode=Mode.SIM, kis_rest_url=sim.url, kis_ws_url=sim.ws_url,
                        kis_app_key="PS" + uuid.uuid4().hex + "0000", kis_account=f"{uuid.uuid4().int % 10**8:08d}-01",
                        _env_file=None)
    b = open_broker(settings, strategy_pool, db.url("strategy"), ManualClock(NOW))
    try:
        yield b
    finally:
        await b.aclose()


@pytest.fixture
def now_clock() -> ManualClock:
    return ManualClock(NOW)


async def _pricesync_beat(admin: Pool, age_s: float) -> None:
    """PriceSync's heartbeat row, as its frame writes it, last beaten ``age_s`` wall seconds ago."""
    async with admin.connection() as conn:
        await conn.execute(
            "INSERT INTO ops.heartbeats (service, instance_id, db_role, pid, host, status, beat_ts, market_ts)"
            " VALUES ('pricesync', 'ps-1', 'sm_pricesync', 4242, 'test', 'RUNNING',"
            " clock_timestamp() - make_interval(secs => %(age)s), %(now)s)"
            " ON CONFLICT (service, instance_id) DO UPDATE SET beat_ts = EXCLUDED.beat_ts",
            {"age": age_s, "now": NOW})


async def _published(admin: Pool, price: int, ts: datetime) -> None:
    """PriceSync's last price of the symbol before it stalled."""
    async with admin.connection() as conn:
        await conn.execute(
            "INSERT INTO market.prices_best (symbol, price, bid, ask, source, ts) VALUES (%s, %s, %s, %s, 'WS', %s)"
            " ON CONFLICT (symbol) DO UPDATE SET price = EXCLUDED.price, ts = EXCLUDED.ts",
            (SYMBOL, price, price - 100, price, ts))


async def _bought(admin: Pool, qty: int, price: int, at: datetime) -> None:
    """A position as Execution records one: the intent, its order and its fill."""
    async with admin.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type)"
            " VALUES (%s, %s, 'BUY', 'ENTRY', %s, 'MKT') RETURNING intent_id", (f"buy-{uuid.uuid4().hex}", SYMBOL, qty))
        i = await cur.fetchone()
        assert i is not None
        await execute(conn, i["intent_id"], [(qty, price)], at=at)


async def _holding(app: StrategyApp) -> Worker:
    (w,) = await to_scan(app)
    await w.step()  # nobody holds the position: adopted
    assert w.status is WorkerStatus.HOLD and w.symbol == SYMBOL
    return w


def _up_for_an_hour(app: StrategyApp) -> None:
    app.feed.started = monotonic() - 3600  # past the start-up grace


async def test_a_stale_quote_is_replaced_by_rest_and_pricesync_stale_means_reducing(
        db: TestDb, strategy_pool: Pool, admin_pool: Pool, broker: Broker, now_clock: ManualClock) -> None:
    clock = now_clock
    quotes = Counting(BrokerQuotes(broker.rest))
    seed_symbols(db.admin_url, [SYMBOL])
    market = await quotes.inner.price(SYMBOL)  # where the simulator's market is now
    bought = round_to_tick(int(market * D("1.05")))  # bought before a 5 % fall: 2 % is the stop loss
    await _bought(admin_pool, 20, bought, NOW - timedelta(minutes=5))
    await _published(admin_pool, bought, NOW - timedelta(seconds=5))
    await _pricesync_beat(admin_pool, age_s=1)
    app = make_app(strategy_pool, clock)
    app.rt.quotes = quotes
    _up_for_an_hour(app)
    w = await _holding(app)

    # PriceSync alive, its quote 5 s old: judged as it is, no REST request, no exit
    assert await app.feed.round() is None
    await w.step()
    assert quotes.calls == []
    async with admin_pool.connection() as conn:
        assert await intents(conn, side="SELL") == []
        (mon,) = await events(conn, "Monitoring")
    assert mon["data"]["price_source"] == "PRICESYNC" and D(mon["data"]["price"]) == bought

    # PriceSync stalls: no beat for 30 s, no price since; the market has fallen meanwhile
    await _pricesync_beat(admin_pool, age_s=30)
    clock.advance(40)
    move = await app.feed.round()
    assert move is not None and move.state == "REDUCING" and move.reason.startswith("PRICESYNC_STALE: no heartbeat for")
    st = await row(admin_pool, "SELECT state, reason, changed_by FROM trade.trading_state")
    assert st == {"state": "REDUCING", "reason": move.reason, "changed_by": "strategy:t1"}
    assert 29 <= int(move.reason.split("for ")[1].rstrip("s")) <= 35
    assert await app.feed.round() is None  # once per episode
    async with admin_pool.connection() as conn:
        (ev,) = await events(conn, "PriceSyncStale")
    assert ev["level"] == "ERROR" and ev["service"] == "strategy" and ev["data"]["to_state"] == "REDUCING"
    assert not await app.scan_if_due()  # no new entries

    # the exit still happens, on the broker's price, and PriceSync's tables are left alone
    await w.step()
    assert quotes.calls == [SYMBOL]
    (rest_price,) = quotes.prices
    assert abs(rest_price / market - 1) < D("0.01")
    async with admin_pool.connection() as conn:
        (s,) = await intents(conn, side="SELL")
        (trig,) = await events(conn, "ExitTriggered")
    assert (s["reason"], s["intent_type"], s["qty"]) == ("STOP_LOSS", "EXIT_FULL", 20)
    ctx = await row(admin_pool, "SELECT ref_price, context FROM trade.intent_context WHERE intent_id = %s",
                    s["intent_id"])
    assert ctx["ref_price"] == rest_price
    c = ctx["context"]
    assert c["price_source"] == "REST" and D(c["price"]) == rest_price and c["gain_pct"] <= -2
    assert D(c["stale_quote"]["price"]) == bought and c["stale_quote"]["age_s"] == 45.0
    assert trig["data"]["price_source"] == "REST" and "from REST" in trig["message"]
    pub = await row(admin_pool, "SELECT price, ts FROM market.prices_best WHERE symbol = %s", SYMBOL)
    assert pub == {"price": D(bought), "ts": NOW - timedelta(seconds=5)}
    hw = await row(admin_pool, "SELECT high_water_price FROM trade.position_state")
    assert hw["high_water_price"] == bought  # the fall does not lower the high-water mark

    # the status screen and the alerts say why trading is REDUCING
    screen = status.render(await status.snapshot(db.url("readonly")))
    assert f"trading state: REDUCING  ({move.reason})" in screen
    (alert,) = await rows(admin_pool, "SELECT severity, throttle_key FROM monitor.alert_events"
                                      " WHERE kind = 'PriceSyncStale'")
    assert alert == {"severity": "critical", "throttle_key": "PriceSyncStale::"}
    dash = await open_pool(db.url("dashboard"), max_size=2)
    try:
        with Receiver() as receiver:
            alerter = Alerter(dash, Webhook(receiver.url), AlertConfig(label="test"), Redactor())
            assert await alerter.run_once() >= 2
            text = receiver.wait_for("PriceSyncStale")
    finally:
        await dash.close()
    assert move.reason in text and "REDUCING" in text

    # Execution sells; the worker lets go and scans again
    await sell(admin_pool, SYMBOL, price=int(rest_price))
    await w.step()
    assert w.status is WorkerStatus.SCAN
    trip = await row(admin_pool, "SELECT exit_reason, pnl FROM trade.round_trips")
    assert trip["exit_reason"] == "STOP_LOSS" and trip["pnl"] < 0

    # PriceSync beats again: ACTIVE, recorded
    await _pricesync_beat(admin_pool, age_s=0)
    back = await app.feed.round()
    assert back is not None and back.state == "ACTIVE" and back.reason.startswith("PRICESYNC_RECOVERED")
    assert (await row(admin_pool, "SELECT state FROM trade.trading_state"))["state"] == "ACTIVE"
    async with admin_pool.connection() as conn:
        (rec,) = await events(conn, "PriceSyncRecovered")
    assert rec["level"] == "INFO" and rec["data"]["from_reason"] == move.reason
    assert await rows(admin_pool, "SELECT * FROM monitor.alert_conditions WHERE kind = 'TradingHalted'") == []
    await app.stop()


async def _held_on_a_stale_quote(db: TestDb, strategy_pool: Pool, admin_pool: Pool, clock: ManualClock,
                                 published: int, quotes: QuoteSource | None) -> tuple[StrategyApp, Worker]:
    """10 shares bought at 70,000; PriceSync's quote ``published``, two minutes old; a worker holding."""
    seed_symbols(db.admin_url, [SYMBOL])
    await _bought(admin_pool, 10, 70_000, NOW - timedelta(minutes=5))
    await _published(admin_pool, published, NOW - timedelta(minutes=2))
    app = make_app(strategy_pool, clock)
    if quotes is not None:
        app.rt.quotes = quotes
    return app, await _holding(app)


async def test_a_rest_quote_is_kept_while_young_and_feeds_the_high_water_mark(
        db: TestDb, strategy_pool: Pool, admin_pool: Pool, now_clock: ManualClock) -> None:
    clock = now_clock
    quotes = FixedQuotes(71_000)  # +1.4 %: no rule triggers
    app, w = await _held_on_a_stale_quote(db, strategy_pool, admin_pool, clock, 70_000, quotes)
    await w.step()
    assert quotes.calls == 1
    clock.advance(20)
    await w.step()
    assert quotes.calls == 1  # 20 s old: still good to judge
    clock.advance(15)
    await w.step()
    assert quotes.calls == 2
    assert (await row(admin_pool, "SELECT high_water_price FROM trade.position_state"))["high_water_price"] == 71_000
    async with admin_pool.connection() as conn:
        assert await intents(conn, side="SELL") == []
        (mon,) = await events(conn, "Monitoring")
    assert mon["data"]["price_source"] == "REST" and mon["data"]["stale_quote"]["price"] == "70000.00"
    await app.stop()


async def test_with_no_rest_quote_there_is_no_decision_on_a_stale_price(
        db: TestDb, strategy_pool: Pool, admin_pool: Pool, now_clock: ManualClock) -> None:
    clock = now_clock
    # -14 %, but two minutes old; and the default quote source: none
    app, w = await _held_on_a_stale_quote(db, strategy_pool, admin_pool, clock, 60_000, None)
    for _ in range(3):
        await w.step()
        clock.advance(5)
    async with admin_pool.connection() as conn:
        assert await intents(conn, side="SELL") == []
        (ev,) = await events(conn, "QuoteUnavailable")  # once a minute, not every step
    assert ev["level"] == "WARN" and ev["symbol"] == SYMBOL and "no REST quote" in ev["message"]
    assert ev["data"]["stale_quote"]["price"] == "60000.00"
    (alert,) = await rows(admin_pool, "SELECT severity FROM monitor.alert_events WHERE kind = 'QuoteUnavailable'")
    assert alert["severity"] == "warning"
    # PriceSync publishes again: judged at once
    await _published(admin_pool, 60_000, clock.now())
    await w.step()
    async with admin_pool.connection() as conn:
        (s,) = await intents(conn, side="SELL")
    assert s["reason"] == "STOP_LOSS"
    await app.stop()


async def _set_state(admin: Pool, state: str, reason: str) -> None:
    async with admin.connection() as conn:
        await conn.execute("UPDATE trade.trading_state SET state = %s, reason = %s, changed_by = 'cli:op',"
                           " changed_ts = clock_timestamp()", (state, reason))


async def test_an_operators_halt_or_flatten_is_never_overridden(strategy_pool: Pool, admin_pool: Pool,
                                                                 now_clock: ManualClock) -> None:
    app = make_app(strategy_pool, now_clock)
    _up_for_an_hour(app)
    state = "SELECT state, reason, changed_by FROM trade.trading_state"
    for st, reason in (("HALTED", "operator halt"), ("REDUCING", "FLATTEN: operator flatten")):
        await _set_state(admin_pool, st, reason)
        for age in (60, 0, 60):
            await _pricesync_beat(admin_pool, age_s=age)
            assert await app.feed.round() is None
            assert await row(admin_pool, state) == {"state": st, "reason": reason, "changed_by": "cli:op"}
    # an operator who resumes while PriceSync is still stale: REDUCING again, the condition holds
    await _set_state(admin_pool, "ACTIVE", "operator resume")
    await _pricesync_beat(admin_pool, age_s=60)
    assert (await app.feed.round()) is not None
    assert (await row(admin_pool, state))["state"] == "REDUCING"
    # and an operator's halt during Strategy's REDUCING stays when PriceSync comes back
    await _set_state(admin_pool, "HALTED", "operator halt")
    await _pricesync_beat(admin_pool, age_s=0)
    assert await app.feed.round() is None
    assert (await row(admin_pool, state))["state"] == "HALTED"
    async with admin_pool.connection() as conn:
        assert len(await events(conn, "PriceSyncStale")) == 1
        assert await events(conn, "PriceSyncRecovered") == []


async def test_the_move_is_a_compare_and_set_on_the_row_as_read(strategy_pool: Pool, admin_pool: Pool) -> None:
    async with strategy_pool.connection() as conn:
        before = await (await conn.execute(Q["trading_state"])).fetchone()
    assert before is not None
    await _set_state(admin_pool, "HALTED", "operator halt")  # in between
    async with strategy_pool.connection() as conn:
        moved = await (await conn.execute(Q["move_trading_state"], {
            "state": "REDUCING", "reason": "PRICESYNC_STALE: no heartbeat for 30s", "changed_by": "strategy:x",
            "from_state": before["state"], "from_reason": before["reason"], "from_ts": before["changed_ts"]}
        )).fetchone()
    assert moved is None
    assert (await row(admin_pool, "SELECT state FROM trade.trading_state"))["state"] == "HALTED"


async def test_a_strategy_just_started_waits_for_pricesync_s_first_beat(strategy_pool: Pool, admin_pool: Pool,
                                                                         now_clock: ManualClock) -> None:
    app = make_app(strategy_pool, now_clock, pricesync_stale_s=1)
    assert await app.feed.round() is None  # no PriceSync row at all, but Strategy is 0 s old
    await asyncio.sleep(1.1)
    move = await app.feed.round()
    assert move == StateMove("REDUCING", "PRICESYNC_STALE: no heartbeat yet")


# --- real processes ------------------------------------------------------------------------------


def _sql(url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def _wait(cond: Any, within: float, what: str, procs: list[ServiceProcess]) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        for p in procs:
            if p.proc is not None and p.proc.poll() is not None:
                pytest.fail(f"{p.name} exited ({p.proc.returncode}):\n{p.log()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n" + "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in procs))


def _stall(url: str, pid: int) -> None:
    """SIGSTOP PriceSync, at a moment it holds no transaction open (a stalled process holding the
    request budget's row lock would stall every service's REST calls, which is another story)."""
    for _ in range(50):
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.05)
        busy = _sql(url, "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = 'sm_pricesync'"
                         " AND datname = current_database() AND state <> 'idle'")[0]["n"]
        if not busy:
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.05)
    pytest.fail("PriceSync was never idle to be stalled")


def test_real_processes_pricesync_stalls_the_exit_goes_on_via_rest_and_trading_recovers(
        db: TestDb, sim: SimProcess, tmp_path: Path) -> None:
    url = db.admin_url
    procs: list[ServiceProcess] = []
    try:
        universe = build_universe(20260101, 2500)
        seed_symbols(url, [SYMBOL])
        # the day's parameters: no entries of Strategy's own, the test's position is the only one
        _sql(url, "INSERT INTO trade.strategy_params (params_version, effective_date, strategy_version, params, note)"
                  " VALUES ('breakout-v1@2026-11-23', '2026-11-23', 'breakout-v1', %s, 'test: exits only')",
             (Jsonb({"entry_start": "09:00:00", "entry_end": "09:00:00"}),))
        _sql(url, "INSERT INTO trade.watchlist (symbol, priority) VALUES (%s, 100)", (SYMBOL,))
        key = "PS" + uuid.uuid4().hex + "0000"
        env = service_env(url, sim, KIS_APP_KEY=key, KIS_ACCOUNT=f"{uuid.uuid4().int % 10**8:08d}-01",
                          SM_PRICESYNC_PLAN_INTERVAL_S="0.5", SM_PRICESYNC_MIN_HOLD_S="1",
                          SM_STRATEGY_WORKERS="1", SM_STRATEGY_HEARTBEAT_S="0.5", SM_STRATEGY_PRICESYNC_STALE_S="3",
                          SM_STRATEGY_MAX_QUOTE_AGE_S="5", SM_STRATEGY_MONITOR_INTERVAL_S="0.5")
        pricesync = ServiceProcess("pricesync", env, tmp_path).start()
        procs.append(pricesync)
        _wait(lambda: _sql(url, "SELECT price FROM market.prices_best WHERE symbol = %s", (SYMBOL,)),
              60, "PriceSync's first price", procs)
        strategy = ServiceProcess("strategy", env, tmp_path).start()
        procs.append(strategy)
        _wait(lambda: _sql(url, "SELECT 1 FROM trade.workers WHERE status = 'SCAN'"), 30, "a SCAN worker", procs)
        time.sleep(4)  # past Strategy's start-up grace, PriceSync beating all along
        assert _sql(url, "SELECT state FROM trade.trading_state")[0]["state"] == "ACTIVE"

        assert pricesync.proc is not None
        _stall(url, pricesync.proc.pid)
        stalled_at = _sql(url, "SELECT price, ts FROM market.prices_best WHERE symbol = %s", (SYMBOL,))[0]
        # PriceSync's last quote ages past the limit (5 s) while nothing replaces it ...
        _wait(lambda: _sim_now(sim) - stalled_at["ts"] > timedelta(seconds=7), 30, "the quote to go stale", procs)
        # ... and a position bought 5 % above that price (the market fell since) is held meanwhile
        bought = round_to_tick(int(D(stalled_at["price"]) * D("1.05")))
        at = _sim_now(sim)
        _as_admin(url, lambda pool: _bought(pool, 12, bought, at))
        st = _wait(lambda: [r for r in _sql(url, "SELECT state, reason FROM trade.trading_state")
                            if r["state"] == "REDUCING"], 20, "REDUCING", procs)[0]
        assert st["reason"].startswith("PRICESYNC_STALE: no heartbeat for")
        (stale,) = _sql(url, "SELECT level, message FROM ops.events WHERE kind = 'PriceSyncStale'")
        assert stale["level"] == "ERROR"
        sells = _wait(lambda: _sql(url, "SELECT i.intent_id, i.reason, i.qty, c.context FROM trade.order_intents i"
                                        " JOIN trade.intent_context c USING (intent_id) WHERE i.side = 'SELL'"),
                      30, "the exit intent", procs)
        (s,) = sells
        assert (s["reason"], s["qty"]) == ("STOP_LOSS", 12)
        assert s["context"]["price_source"] == "REST" and s["context"]["gain_pct"] <= -2
        assert s["context"]["stale_quote"]["age_s"] > 5
        rest_price = D(s["context"]["price"])
        lo, hi = universe[SYMBOL].prior_close * D("0.7"), universe[SYMBOL].prior_close * D("1.3")
        assert lo <= rest_price <= hi
        assert _sql(url, "SELECT price, ts FROM market.prices_best WHERE symbol = %s", (SYMBOL,))[0] == stalled_at
        at = _sim_now(sim)
        _as_admin(url, lambda pool: sell(pool, SYMBOL, price=int(rest_price), at=at))
        _wait(lambda: _sql(url, "SELECT 1 FROM trade.position_state WHERE symbol = %s AND status = 'FLAT'",
                           (SYMBOL,)), 20, "the position closed", procs)

        os.kill(pricesync.proc.pid, signal.SIGCONT)  # PriceSync beats again
        back = _wait(lambda: [r for r in _sql(url, "SELECT state, reason, changed_by FROM trade.trading_state")
                              if r["state"] == "ACTIVE"], 20, "ACTIVE again", procs)[0]
        assert back["reason"].startswith("PRICESYNC_RECOVERED") and back["changed_by"].startswith("strategy:")
        assert len(_sql(url, "SELECT 1 FROM ops.events WHERE kind = 'PriceSyncRecovered'")) == 1
        assert "REST quote" in strategy.log() and "PriceSyncStale" in strategy.log()
    finally:
        for p in procs:
            if p.proc is not None and p.proc.poll() is None:
                os.kill(p.proc.pid, signal.SIGCONT)
            p.stop()


def _sim_now(sim: SimProcess) -> datetime:
    return datetime.fromisoformat(sim.get("/sim/clock")["now"])


def _as_admin(url: str, work: Callable[[Pool], Awaitable[object]]) -> None:
    """Play another service's part (Execution's fills) from the synchronous test."""
    async def run() -> None:
        pool = await open_pool(url, max_size=1)
        try:
            await work(pool)
        finally:
            await pool.close()

    asyncio.run(run())
