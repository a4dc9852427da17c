"""The strategy port: what a strategy decides, and nothing else.

A strategy is a pure function of snapshots: it is handed frozen values (candles, the quote and book
top, the symbol's halt, VI and designation state, the position, the time as a ``datetime``) and answers with decisions
(a universe filter, an entry signal with a score, an exit for a held position, a size).  It never
gets a connection, a broker client or the clock, so it cannot write an intent, skip a risk check,
sleep, or move time; everything with a side effect stays with the product: workers, symbol locks,
risk limits, intents, the forced liquidation and the trading state.  That is what lets a user's
strategy be tested with no database (values in, decisions out) and lets the product guarantee that
no strategy trades past a risk limit or through the close.

Decisions are recorded as they are: ``inputs`` dicts go into trade.candidates and
trade.intent_context, so the daily summary can tell which signals led to winners.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Candle:
    """One closed or forming 1-minute bar, as PriceSync built it from the trades."""

    ts: datetime  # start of the minute
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    turnover: Decimal


@dataclass(frozen=True)
class MarketSnapshot:
    """One symbol as the market shows it at one moment.

    ``candles`` are newest first and only as many as the strategy asked for (``bars``), within the
    parameters' ``lookback_min``.  ``source`` says where ``price`` came from: PriceSync's published
    quote, or the broker's REST quote when the published one was too old to judge an exit on.

    The VI and designation fields are what PriceSync last read from KIS today
    (docs/market-rules.md).  The product already refuses entries for a VI, a price near a static
    VI trigger and the designations its settings block, so a strategy never sees those as
    candidates; the fields are there for its own finer rules (and for its exits).
    """

    symbol: str
    market: str  # KOSPI | KOSDAQ
    price: Decimal
    bid: Decimal | None
    ask: Decimal | None
    volume: int | None  # the day's, so far
    turnover: Decimal | None  # the day's, so far, in KRW
    change_pct: Decimal | None  # against the previous close
    base_price: Decimal | None  # the previous close the price limits are set from
    upper_limit: Decimal | None
    halted: bool
    stale: bool  # PriceSync marked this symbol's feed stale
    ts: datetime  # when the price was true, on the market clock
    candles: tuple[Candle, ...] = ()
    source: str = "PRICESYNC"  # PRICESYNC | REST
    open: Decimal | None = None  # the day's opening price
    # a VI's single-price auction in force: STATIC, DYNAMIC, BOTH, AUCTION (which VI not said), or NONE
    vi: str = "NONE"
    vi_reference: Decimal | None = None  # VI_STND_PRC: a static VI fires at ±10 % from it
    vi_since: datetime | None = None  # when the VI state began (market time)
    designation: str | None = None  # iscd_stat_cls_code: 51 관리 … 59 단기과열; None for none
    warn_code: str | None = None  # mrkt_warn_cls_code: 00 none, 01 투자주의, 02 투자경고, 03 투자위험
    liquidation_trading: bool = False  # 정리매매: the last days before a delisting


@dataclass(frozen=True)
class PositionSnapshot:
    """A held position, from the ledger of fills (trade.position_state)."""

    symbol: str
    qty: int
    avg_price: Decimal
    entry_ts: datetime
    high_water: Decimal  # highest price seen since entry, the current one included
    exit_stage: int = 0  # 1 once a partial exit has been sold


@dataclass(frozen=True)
class EntrySignal:
    """The verdict on one symbol: tradeable at all (``passed``), and a signal with a score.

    Higher scores are tried first.  ``rejected_by`` names the filters or conditions that said no.
    """

    symbol: str
    passed: bool
    signal: bool
    score: Decimal
    rejected_by: tuple[str, ...]
    inputs: dict[str, Any] = field(default_factory=dict)


class ExitKind(StrEnum):
    NONE = "NONE"
    PARTIAL = "PARTIAL"
    FULL = "FULL"


class ExitReason(StrEnum):
    """Why a position is sold: the one vocabulary of trade.order_intents.reason for sells.

    The last two are the product's alone: no strategy returns them.
    """

    STOP_LOSS = "STOP_LOSS"
    TRAILING_STOP = "TRAILING_STOP"
    TAKE_PROFIT = "TAKE_PROFIT"
    TAKE_PROFIT_2 = "TAKE_PROFIT_2"
    TREND_BREAK = "TREND_BREAK"
    TIME_EXIT = "TIME_EXIT"
    FORCED_LIQUIDATION = "FORCED_LIQUIDATION"
    FLATTEN = "FLATTEN"


FORCED_REASONS = frozenset({ExitReason.FORCED_LIQUIDATION.value, ExitReason.FLATTEN.value})


@dataclass(frozen=True)
class ExitDecision:
    kind: ExitKind
    reason: ExitReason | None
    qty: int
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EntryOrder:
    """How much to buy and how.  ``reserve_price`` is what the broker holds in cash per share (the
    upper limit for a market buy); the risk checks count exposure at it."""

    qty: int
    order_type: str  # MKT | LMT
    limit_price: Decimal | None
    reserve_price: Decimal


class StrategyParams(BaseModel):
    """The parameters every strategy has, because the product acts on them around the strategy.

    A strategy's own parameter model subclasses this one.  Parameters are versioned by date in
    trade.strategy_params; an older row's unknown keys are ignored and missing ones take defaults,
    so adding a parameter needs no migration.
    """

    # defaults validated too, so a strategy whose own defaults are wrong is refused when it loads
    model_config = ConfigDict(frozen=True, extra="ignore", validate_default=True)

    # the entry window (local time, KST): no scan and no entry outside it
    entry_start: time = time(9, 5)
    entry_end: time = time(15, 0)
    # candles older than this are not in the snapshots
    lookback_min: int = Field(default=120, ge=5, le=1440)
    capital_per_trade: Decimal = Field(default=Decimal(1_000_000), gt=0)
    # the risk check counts this much of a position's value as at risk
    stop_loss_pct: Decimal = Field(default=Decimal(2), gt=0, le=100)
    # a symbol sold is not bought again for this long
    reentry_cooldown_min: float = Field(default=15.0, ge=0, le=1440)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@runtime_checkable
class Strategy(Protocol):
    """What a strategy is.  Every method is pure: same inputs, same decision; no I/O.

    ``name`` and ``version`` are recorded on every intent (as ``name-version`` in
    trade.order_intents.strategy_version) next to the parameters' version; change ``version`` when
    the logic changes, so a day's results can be told apart.
    """

    # read-only members, so a class attribute of a narrower type (its own Params model) fits
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def Params(self) -> type[StrategyParams]: ...

    def bars(self, p: Any) -> int:
        """How many 1-minute candles (newest first) the snapshots should carry."""
        ...

    def universe(self, m: MarketSnapshot, p: Any, now: datetime) -> Sequence[str]:
        """Names of the filters ``m`` fails; empty means it may be traded at all."""
        ...

    def entry(self, m: MarketSnapshot, p: Any, now: datetime) -> EntrySignal:
        """Whether to buy ``m`` now (it passed ``universe``), with a score to rank signals by."""
        ...

    def exit(self, pos: PositionSnapshot, m: MarketSnapshot, p: Any, now: datetime) -> ExitDecision:
        """What to do with a held position.  The close and flatten are not asked: they override."""
        ...

    def size(self, m: MarketSnapshot, p: Any) -> EntryOrder:
        """How much of ``m`` to buy; the risk checks may still refuse it."""
        ...


def label(s: Strategy) -> str:
    """What trade.order_intents.strategy_version records: ``name-version``."""
    return f"{s.name}-{s.version}"
