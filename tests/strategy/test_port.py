"""The strategy port: strategies as pure functions of frozen snapshots, loaded by SM_STRATEGY.

Pure tests build snapshots by hand (no database); the service tests run a strategy written in a
temporary folder, installed nowhere, through the real StrategyApp on a real database.
"""

from __future__ import annotations

import dataclasses
import re
import runpy
import subprocess
import sys
import textwrap
import typing
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from stock_manager.services.strategy import port
from stock_manager.services.strategy.config import Params
from stock_manager.services.strategy.loading import load_strategy
from stock_manager.services.strategy.port import (
    Candle,
    ExitKind,
    ExitReason,
    MarketSnapshot,
    PositionSnapshot,
    Strategy,
)
from stock_manager.services.strategy.rules.exits import Holding, Quote, evaluate_exit
from stock_manager.services.strategy.rules.indicators import recent_high, sma
from stock_manager.services.strategy.rules.scan import ScanRow, evaluate, run_scan
from stock_manager.services.strategy.strategies.breakout import Breakout
from stock_manager.services.strategy.strategies.vwap_reversion import VwapReversion, vwap
from stock_manager.shared.clock import ManualClock
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.settings import SettingsError
from tests.strategy.conftest import make_app
from tests.strategy.flow import rows, to_scan
from tests.strategy.support import T0, add_symbol
from tests.support.sim import clean_env

D = Decimal
ROOT = Path(__file__).resolve().parents[2]

# A strategy as a user writes it: one file, outside the repository, importing only the port.
ANY_BUYER = '''
from datetime import datetime
from decimal import Decimal

from stock_manager.services.strategy.port import (
    EntryOrder, EntrySignal, ExitDecision, ExitKind, ExitReason, MarketSnapshot, PositionSnapshot, StrategyParams,
)


class AnyParams(StrategyParams):
    shares: int = 1
    hold_s: float = 5.0


class AnyBuyer:
    """Buys every symbol with a two-sided quote, the busiest first; sells after hold_s."""

    name = "any-buyer"
    version = "t1"
    Params = AnyParams

    def bars(self, p: AnyParams) -> int:
        return 1

    def universe(self, m: MarketSnapshot, p: AnyParams, now: datetime) -> list[str]:
        return [] if m.bid and m.ask and not m.halted else ["no_quote"]

    def entry(self, m: MarketSnapshot, p: AnyParams, now: datetime) -> EntrySignal:
        score = Decimal(m.turnover or 0) / Decimal(10**9)
        return EntrySignal(m.symbol, True, True, score.quantize(Decimal("0.0001")), (),
                           {"why": "any", "price": str(m.price)})

    def exit(self, pos: PositionSnapshot, m: MarketSnapshot, p: AnyParams, now: datetime) -> ExitDecision:
        held = (now - pos.entry_ts).total_seconds()
        if held >= p.hold_s:
            return ExitDecision(ExitKind.FULL, ExitReason.TIME_EXIT, pos.qty, {"held_s": held})
        return ExitDecision(ExitKind.NONE, None, 0, {"held_s": held})

    def size(self, m: MarketSnapshot, p: AnyParams) -> EntryOrder:
        reserve = m.upper_limit or m.price * 2
        return EntryOrder(p.shares, "MKT", None, reserve)
'''


def write_strategy(folder: Path, source: str = ANY_BUYER, name: str = "any_buyer.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def docs_block(marker: str) -> str:
    """A python block of docs/strategies.md, as a reader would copy it."""
    text = (ROOT / "docs" / "strategies.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    (block,) = [b for b in blocks if marker in b]
    return str(block)


def docs_template() -> str:
    return docs_block("class HigherHigh:")


def bar(ts: datetime, close: int, high: int | None = None, low: int | None = None, open_: int | None = None,
        volume: int = 1000) -> Candle:
    return Candle(ts, D(open_ if open_ is not None else close), D(high if high is not None else close + 10),
                  D(low if low is not None else close - 10), D(close), volume, D(close * volume))


def snap(price: int, candles: tuple[Candle, ...] = (), *, bid: int | None = None, ask: int | None = None,
         now: datetime = T0, **kw: Any) -> MarketSnapshot:
    base: dict[str, Any] = dict(symbol="005930", market="KOSPI", price=D(price),
                                bid=D(bid if bid is not None else price - 10), ask=D(ask if ask is not None else price),
                                volume=500_000, turnover=D(5_000_000_000), change_pct=D(1), base_price=D(10_000),
                                upper_limit=D(13_000), halted=False, stale=False, ts=now - timedelta(seconds=5),
                                candles=candles)
    base.update(kw)
    return MarketSnapshot(**base)


def climbing(n: int = 25, start: int = 10_000, step: int = 20) -> tuple[Candle, ...]:
    """n bars climbing by ``step``, newest first."""
    return tuple(bar(T0 - timedelta(minutes=k + 1), start + (n - 1 - k) * step) for k in range(n))


# --- pure: no database -------------------------------------------------------------------------


def test_the_docs_template_loads_by_path_and_decides_from_values_alone(tmp_path: Path) -> None:
    s = load_strategy(f"{write_strategy(tmp_path, docs_template(), 'higher_high.py')}:HigherHigh")
    p = s.Params()
    m = snap(10_100, (bar(T0, 10_100), bar(T0 - timedelta(minutes=1), 10_000, high=10_050)))
    assert s.universe(m, p, T0) == []
    e = s.entry(m, p, T0)
    assert e.signal and e.score > 0
    assert not s.entry(snap(10_040, m.candles), p, T0).signal
    assert s.universe(snap(10_100, m.candles, halted=True), p, T0) == ["halted"]
    order = s.size(m, p)
    assert (order.qty, order.order_type, order.limit_price) == (99, "LMT", D(10_100))
    pos = PositionSnapshot("005930", 99, D(10_000), T0 - timedelta(minutes=1), D(10_100))
    assert s.exit(pos, snap(10_110), p, T0).reason is ExitReason.TAKE_PROFIT
    assert s.exit(pos, snap(9_890), p, T0).reason is ExitReason.STOP_LOSS
    assert s.exit(pos, snap(10_050), p, T0).kind is ExitKind.NONE
    assert s.exit(pos, snap(10_050), p, T0 + timedelta(minutes=20)).reason is ExitReason.TIME_EXIT


def test_the_docs_way_to_test_a_strategy_runs_as_written(tmp_path: Path) -> None:
    path = write_strategy(tmp_path, docs_template(), "higher_high.py")
    snippet = docs_block("load_strategy(").replace("/home/me/strategies/higher_high.py", str(path))
    runpy.run_path(str(write_strategy(tmp_path, snippet, "try_it.py")))  # its own asserts are the test


def test_the_breakout_through_the_port_decides_as_its_rules() -> None:
    s = Breakout()
    p = Params()
    candles = climbing()
    m = snap(10_500, candles)
    closes, highs = [c.close for c in candles], [c.high for c in candles]
    row = ScanRow("005930", "KOSPI", m.price, m.bid, m.ask, m.volume, m.turnover, m.change_pct, m.upper_limit,
                  False, False, m.ts, len(candles), sma(closes, 5), sma(closes, 20), recent_high(highs, 10))
    assert s.universe(m, p, T0) == []
    assert s.entry(m, p, T0) == evaluate(row, p, T0)
    assert s.entry(m, p, T0).signal
    assert s.bars(p) == 20
    pos = PositionSnapshot("005930", 100, D(10_000), T0 - timedelta(minutes=5), D(10_350))
    for price in (9_790, 10_100, 10_320, 10_510):
        want = evaluate_exit(Holding(100, D(10_000), pos.entry_ts, D(10_350)), Quote(D(price), sma(closes, 5),
                             m.ts), p, T0)
        assert s.exit(pos, snap(price, candles), p, T0) == want
    order = s.size(m, p)
    assert (order.order_type, order.reserve_price, order.qty) == ("MKT", D(13_000), 76)  # sized at the upper limit


def test_vwap_reversion_buys_a_stretch_below_vwap_that_turns_up_and_sells_at_vwap() -> None:
    s = VwapReversion()
    p = s.Params(min_bars=5)
    flat = tuple(bar(T0 - timedelta(minutes=k + 1), 10_000) for k in range(10))
    assert vwap(flat) == D(10_000)
    turning = (bar(T0, 9880, open_=9850, high=9890, low=9840), *flat)
    e = s.entry(snap(9_880, turning), p, T0)
    assert e.signal and e.inputs["turning_up"] and e.score > D(1)
    falling = (bar(T0, 9880, open_=9950, high=9960, low=9870), *flat)
    assert s.entry(snap(9_880, falling), p, T0).rejected_by == ("still_falling",)
    assert s.entry(snap(10_010, flat), p, T0).rejected_by == ("not_stretched",)
    assert s.entry(snap(9_400, flat), p, T0).rejected_by == ("too_far", "still_falling")
    pos = PositionSnapshot("005930", 100, D(9_880), T0 - timedelta(minutes=3), D(9_880))
    assert s.exit(pos, snap(10_000, flat), p, T0).reason is ExitReason.TAKE_PROFIT
    assert s.exit(pos, snap(9_720, flat), p, T0).reason is ExitReason.STOP_LOSS
    assert s.exit(pos, snap(9_900, flat), p, T0).kind is ExitKind.NONE
    assert s.exit(pos, snap(9_900, flat), p, T0 + timedelta(hours=1)).reason is ExitReason.TIME_EXIT
    assert s.size(snap(9_880, ask=9_890), p).limit_price == D(9_890)


def test_a_strategy_that_raises_on_one_symbol_loses_that_symbol_not_the_scan() -> None:
    class Fussy(Breakout):
        def entry(self, m: MarketSnapshot, p: Params, now: datetime) -> port.EntrySignal:
            if m.symbol == "000660":
                raise ZeroDivisionError("oops")
            return super().entry(m, p, now)

    out = run_scan(Fussy(), [snap(10_500, climbing()), snap(10_500, climbing(), symbol="000660")], Params(), T0)
    assert (out.universe, out.signals, out.excluded) == (2, 1, {"strategy_error": 1})
    (bad,) = [e for e in out.evaluations if e.symbol == "000660"]
    assert bad.inputs["error"] == "ZeroDivisionError: oops"


PLAIN = (str, int, float, bool, Decimal, datetime, type(None))


def plain(value: object, path: str = "arg") -> None:
    """``value`` is made of plain values and frozen containers only, all the way down."""
    if isinstance(value, (PLAIN, ExitReason)):
        return
    if isinstance(value, tuple):
        for k, v in enumerate(value):
            plain(v, f"{path}[{k}]")
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        assert type(value).__dataclass_params__.frozen, f"{path}: {type(value).__name__} is not frozen"  # type: ignore[attr-defined]
        for f in dataclasses.fields(value):
            plain(getattr(value, f.name), f"{path}.{f.name}")
        return
    if isinstance(value, BaseModel):
        assert value.model_config.get("frozen"), f"{path}: {type(value).__name__} is not frozen"
        for field_name in type(value).model_fields:
            plain(getattr(value, field_name), f"{path}.{field_name}")
        return
    if isinstance(value, time):
        return
    raise AssertionError(f"{path}: a strategy was handed a {type(value).__module__}.{type(value).__name__}")


def test_the_port_hands_out_only_frozen_plain_values() -> None:
    allowed = {str, int, float, bool, Decimal, datetime, type(None), Candle}

    def leaves(hint: Any) -> set[Any]:
        args = typing.get_args(hint)
        return set().union(*(leaves(a) for a in args if a is not Ellipsis)) if args else {hint}

    for cls in (Candle, MarketSnapshot, PositionSnapshot):
        assert getattr(cls, "__dataclass_params__").frozen  # noqa: B009
        for name, hint in typing.get_type_hints(cls).items():
            assert leaves(hint) <= allowed, (cls.__name__, name, hint)
    m = snap(10_000, climbing(3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.price = D(1)  # type: ignore[misc]
    plain(m)
    for method in ("bars", "universe", "entry", "exit", "size"):
        params = list(typing.get_type_hints(getattr(Strategy, method)).items())
        names = {n for n, _ in params} - {"return"}
        assert names <= {"m", "p", "now", "pos"}, (method, names)


# --- loading -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "says"), [
    ("no-such-strategy", "no entry point of that name"),
    ("/nowhere/strategy.py:Nope", "no file /nowhere/strategy.py"),
    ("stock_manager.services.strategy.port:Missing", "has no Missing"),
    ("no_such_module_xyz:Thing", "importing no_such_module_xyz failed"),
    ("stock_manager.services.strategy.port:label", "is not a class"),
    ("stock_manager.services.strategy.port:Candle", "Candle.name must be a non-empty string"),
])
def test_a_bad_strategy_spec_is_one_line_naming_sm_strategy(spec: str, says: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_strategy(spec)
    msg = str(err.value)
    assert msg.startswith(f"setting SM_STRATEGY={spec!r} is malformed") and says in msg and "\n" not in msg


@pytest.mark.parametrize(("change", "says"), [
    (("    def size(", "    def sized("), "AnyBuyer lacks size"),
    (("class AnyParams(StrategyParams)", "class AnyParams"), "Params must be a subclass of port.StrategyParams"),
    (("    shares: int = 1", "    shares: int = 'many'"), "Params defaults are invalid: shares"),
    (("    version = \"t1\"", "    version = \"t 1\""), "name-version must be"),
    (("from datetime import datetime", "import no_such_thing_xyz"), "importing"),
])
def test_a_broken_strategy_file_is_refused_at_load(tmp_path: Path, change: tuple[str, str], says: str) -> None:
    source = ANY_BUYER.replace(*change)
    path = write_strategy(tmp_path, source)
    with pytest.raises(SettingsError, match=re.escape(says)):
        load_strategy(f"{path}:AnyBuyer")


def test_strategies_load_by_entry_point_module_and_path(tmp_path: Path) -> None:
    assert isinstance(load_strategy(None), Breakout)
    assert isinstance(load_strategy("breakout"), Breakout)
    assert isinstance(load_strategy("vwap-reversion"), VwapReversion)
    assert isinstance(load_strategy("stock_manager.services.strategy.strategies.breakout:Breakout"), Breakout)
    s = load_strategy(f"{write_strategy(tmp_path)}:AnyBuyer")
    assert (s.name, s.version, port.label(s)) == ("any-buyer", "t1", "any-buyer-t1")
    assert isinstance(s, Strategy)


def test_the_service_stops_at_start_with_one_line_for_a_bad_strategy(tmp_path: Path) -> None:
    spec = f"{tmp_path}/missing.py:Nope"
    r = subprocess.run([sys.executable, "-m", "stock_manager", "run", "strategy"], capture_output=True, text=True,
                       env=clean_env(SM_STRATEGY=spec), timeout=60, cwd=tmp_path)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [f"stock-manager strategy: setting SM_STRATEGY={spec!r} is malformed: no file {spec[:-5]}"]


# --- through the real service, on a real database ----------------------------------------------


class Spy:
    """Wraps a strategy and keeps every argument the service hands it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.version, self.Params = inner.name, inner.version, inner.Params
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def _call(self, method: str, *args: Any) -> Any:
        self.calls.append((method, args))
        return getattr(self.inner, method)(*args)

    def bars(self, p: Any) -> Any:
        return self._call("bars", p)

    def universe(self, m: Any, p: Any, now: Any) -> Any:
        return self._call("universe", m, p, now)

    def entry(self, m: Any, p: Any, now: Any) -> Any:
        return self._call("entry", m, p, now)

    def exit(self, pos: Any, m: Any, p: Any, now: Any) -> Any:
        return self._call("exit", pos, m, p, now)

    def size(self, m: Any, p: Any) -> Any:
        return self._call("size", m, p)


async def test_a_strategy_from_a_temp_folder_decides_the_intents_and_gets_only_values(
        tmp_path: Path, strategy_pool: Pool, admin_pool: Pool, clock: ManualClock) -> None:
    from tests.strategy.support import execute, intents

    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="flat", turnover=9_000_000_000)
        await add_symbol(conn, "000660", trend="flat")
        # the day's parameters, tuned: two shares a trade
        await conn.execute("INSERT INTO trade.strategy_params (params_version, effective_date, strategy_version,"
                           " params, note) VALUES ('any-buyer-t1@tuned', %s, 'any-buyer-t1',"
                           " '{\"shares\": 2, \"hold_s\": 30}', 'test')", (T0.date(),))
    spy = Spy(load_strategy(f"{write_strategy(tmp_path)}:AnyBuyer"))
    app = make_app(strategy_pool, clock)
    app.rt.strategy = spy
    try:
        (w,) = await to_scan(app)
        res = await app.scanner.run_once()
        assert [e.symbol for e in res.signals] == ["005930", "000660"]  # its score, the busiest first
        await w.step()
        async with admin_pool.connection() as conn:
            (i,) = await intents(conn, intent_type="ENTRY")
            assert (i["symbol"], i["qty"], i["order_type"], i["reason"]) == ("005930", 2, "MKT", "SIGNAL_ANY_BUYER")
            assert (i["strategy_version"], i["params_version"]) == ("any-buyer-t1", "any-buyer-t1@tuned")
            await execute(conn, i["intent_id"], [(2, 10_500)])
        (ctx,) = await rows(admin_pool, "SELECT context FROM trade.intent_context WHERE intent_id = %s",
                            i["intent_id"])
        assert ctx["context"]["strategy"] == "any-buyer" and ctx["context"]["why"] == "any"
        await w.step()  # HOLD
        clock.advance(31)
        async with admin_pool.connection() as conn:
            await conn.execute("UPDATE market.prices_best SET ts = %s", (clock.now(),))
        await w.step()
        async with admin_pool.connection() as conn:
            (sell,) = await intents(conn, side="SELL")
        assert (sell["reason"], sell["qty"], sell["strategy_version"]) == ("TIME_EXIT", 2, "any-buyer-t1")
    finally:
        await app.stop()
    methods = {m for m, _ in spy.calls}
    assert methods == {"bars", "universe", "entry", "exit", "size"}
    for method, args in spy.calls:
        for k, a in enumerate(args):
            plain(a, f"{method} arg {k}")


async def test_parameters_the_strategy_refuses_stop_strategy_at_start(
        tmp_path: Path, strategy_pool: Pool, admin_pool: Pool, clock: ManualClock) -> None:
    async with admin_pool.connection() as conn:
        await conn.execute("INSERT INTO trade.strategy_params (params_version, effective_date, strategy_version,"
                           " params, note) VALUES ('any-buyer-t1@bad', %s, 'any-buyer-t1',"
                           " '{\"shares\": \"lots\"}', 'test')", (T0.date(),))
    app = make_app(strategy_pool, clock, strategy=f"{write_strategy(tmp_path)}:AnyBuyer")
    with pytest.raises(SettingsError) as err:
        await app.start()
    assert str(err.value).startswith("strategy parameters any-buyer-t1@bad (trade.strategy_params) are invalid for "
                                     "any-buyer-t1: shares: ")


async def test_the_second_builtin_runs_by_its_entry_point_name(strategy_pool: Pool, admin_pool: Pool,
                                                               clock: ManualClock) -> None:
    from tests.strategy.support import intents, set_price

    async with admin_pool.connection() as conn:
        await add_symbol(conn, "005930", trend="flat", price=10_500)  # 25 bars around 10,500: the VWAP
        await set_price(conn, "005930", 10_350, now=T0)  # 1.4 % below it ...
        await conn.execute("INSERT INTO market.candles (symbol, bucket_ts, open, high, low, close, volume, turnover,"
                           " n_ticks, closed) VALUES ('005930', %s, 10300, 10360, 10290, 10350, 1000, 10350000, 10,"
                           " false)", (T0,))  # ... and turning up within the minute
    app = make_app(strategy_pool, clock, strategy="vwap-reversion")
    try:
        (w,) = await to_scan(app)
        res = await app.scanner.run_once()
        assert [e.symbol for e in res.signals] == ["005930"]
        await w.step()
        async with admin_pool.connection() as conn:
            (i,) = await intents(conn, intent_type="ENTRY")
    finally:
        await app.stop()
    assert (i["order_type"], i["limit_price"], i["qty"]) == ("LMT", D(10_350), 96)
    assert (i["strategy_version"], i["params_version"], i["reason"]) == (
        "vwap-reversion-v1", "vwap-reversion-v1@2026-03-10", "SIGNAL_VWAP_REVERSION")
    (params,) = await rows(admin_pool, "SELECT params FROM trade.strategy_params WHERE strategy_version = %s",
                           "vwap-reversion-v1")
    assert params["params"]["entry_below_pct"] == "1.0"  # its defaults, seeded for the day
