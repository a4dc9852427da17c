"""Strategy's settings (operator limits, from the environment) and parameters (tuning, from the database).

The split is deliberate: risk limits and process shape belong to whoever runs the money and are set
in the environment (``SM_STRATEGY_*``); strategy parameters are tuned day by day from the daily
summaries and versioned by date in ``trade.strategy_params`` so every intent can say which ones it
was decided under.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from stock_manager.services.strategy.rules.universe import UniverseParams
from stock_manager.shared.settings import SettingsError

STRATEGY_VERSION = "breakout-v1"


class StrategyConfig(BaseSettings):
    """Operator settings; a malformed one stops the service at start with one line naming it."""

    model_config = SettingsConfigDict(env_prefix="SM_STRATEGY_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")

    # which strategy decides (CONTRACT: SM_STRATEGY, no prefix): package.module:Class, path/file.py:Class,
    # or an entry point of group stock_manager.strategies; unset is the built-in breakout
    strategy: str | None = Field(default=None, validation_alias=AliasChoices("SM_STRATEGY", "strategy"))
    workers: int = Field(default=2, ge=1, le=32)
    # what intents record as strategy_version; unset, the strategy's own name-version
    strategy_version: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,40}$")
    # risk limits (seed 000 / 003: daily loss, per-symbol exposure, total positions, capital)
    capital_limit: Decimal = Field(default=Decimal(10_000_000), gt=0)
    daily_loss_limit: Decimal = Field(default=Decimal(300_000), gt=0)
    max_positions: int = Field(default=5, ge=1, le=100)
    max_symbol_exposure: Decimal = Field(default=Decimal(3_000_000), gt=0)
    # the forced liquidation starts this many minutes before the 15:30 close for the least liquid
    # position, and last_lead minutes before it for the most liquid (SC-008: 10-15 minutes)
    liquidation_lead_min: float = Field(default=15.0, ge=1, le=120)
    liquidation_last_lead_min: float = Field(default=11.0, gt=10, le=120)  # every sell before 15:20
    # a liquidation sell is a conditional limit (ORD_DVSN 02) this many ticks below the bid
    liquidation_limit_ticks: int = Field(default=2, ge=0, le=20)
    # no cancel later than this before the 15:20 auction, so a re-priced sell is back before it
    liquidation_cancel_guard_s: float = Field(default=30.0, ge=0, le=600)
    # sell what the close leaves in the post-close (06) and after-hours (07) sessions; the service
    # sets it from the KIS environment unless SM_STRATEGY_AFTER_HOURS says (paper KIS has neither)
    after_hours: bool = True
    # liveness is wall time on the database's clock, so every process agrees on it
    lock_ttl_s: int = Field(default=30, ge=2, le=3600)
    worker_ttl_s: float = Field(default=30.0, ge=2, le=3600)
    heartbeat_s: float = Field(default=5.0, gt=0, le=60)
    # pacing, in clock seconds (a sped-up simulator runs them faster), never faster than the floor
    scan_interval_s: float = Field(default=10.0, gt=0, le=600)
    monitor_interval_s: float = Field(default=2.0, gt=0, le=600)
    min_wall_interval_s: float = Field(default=0.2, ge=0, le=60)
    # waiting for Execution is wall time: it is how long Execution takes, not how long the market does
    intent_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    liquidation_retry_s: float = Field(default=5.0, ge=0, le=600)
    liquidation_max_retries: int = Field(default=3, ge=1, le=50)
    scan_store_limit: int = Field(default=50, ge=0, le=5000)
    monitor_event_every_s: float = Field(default=60.0, ge=0, le=3600)
    # exits never judge a stale price: a held symbol's published quote older than this many market
    # seconds (prices move with the market) is replaced by a REST quote; on a sped-up clock the
    # limit is never under the wall floor (delivering a price takes wall time)
    max_quote_age_s: float = Field(default=30.0, gt=0, le=3600)
    quote_age_floor_wall_s: float = Field(default=3.0, ge=0, le=600)
    rest_quote_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # PriceSync's heartbeat older than this (wall seconds on the database's clock, like every
    # liveness here) puts trading in REDUCING until it is fresh again
    pricesync_stale_s: float = Field(default=20.0, ge=1, le=3600)
    # entries refused whatever the strategy says (docs/market-rules.md, "Volatility interruption" and
    # "Designations"): for these iscd_stat_cls_code designations (comma-separated; empty: none),
    # these mrkt_warn_cls_code warnings (02 투자경고, 03 투자위험: the same as 53 and 52), 정리매매,
    # a stock in a VI auction, and one whose price is within vi_near_pct percent of a static VI
    # trigger (its reference ± 10 %)
    blocked_designations: Annotated[tuple[str, ...], NoDecode] = ("51", "52", "53", "58", "59")
    blocked_warn_codes: Annotated[tuple[str, ...], NoDecode] = ("02", "03")
    block_liquidation_trading: bool = True
    vi_near_pct: Decimal = Field(default=Decimal("1.5"), ge=0, le=10)

    @field_validator("blocked_designations", "blocked_warn_codes", mode="before")
    @classmethod
    def _codes(cls, v: object) -> tuple[str, ...]:
        """``51,52,53`` in the environment, two digits each."""
        if isinstance(v, str):
            items = v.split(",")
        elif isinstance(v, list | tuple | set | frozenset):
            items = [str(x) for x in v]
        else:
            raise ValueError("expected two-digit codes separated by commas")
        codes = tuple(sorted({x.strip() for x in items if x.strip()}))
        bad = [c for c in codes if len(c) != 2 or not c.isdigit()]
        if bad:
            raise ValueError(f"expected two-digit codes separated by commas, got {', '.join(bad)}")
        return codes

    @field_validator("liquidation_last_lead_min")
    @classmethod
    def _last_lead(cls, v: float, info: ValidationInfo) -> float:
        lead = info.data.get("liquidation_lead_min")
        if lead is not None and v > lead:
            raise ValueError(f"must not exceed SM_STRATEGY_LIQUIDATION_LEAD_MIN ({lead})")
        return v

    def risk_defaults(self) -> dict[str, Any]:
        return {
            "capital_limit": str(self.capital_limit),
            "daily_loss_limit": str(self.daily_loss_limit),
            "max_positions": self.max_positions,
            "max_symbol_exposure": str(self.max_symbol_exposure),
            "liquidation_lead_min": self.liquidation_lead_min,
            "liquidation_last_lead_min": self.liquidation_last_lead_min,
            "after_hours": self.after_hours,
        }


def load_config(**overrides: Any) -> StrategyConfig:
    try:
        return StrategyConfig(**overrides)
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        name = "SM_STRATEGY" if field in ("strategy", "SM_STRATEGY") else "SM_STRATEGY_" + field.upper()
        raise SettingsError(f"setting {name} is malformed: {err['msg']}") from None


class Params(UniverseParams):
    """The built-in breakout's parameters (the universe filters and the window are inherited)."""

    # indicators on 1-minute candles
    sma_short: int = Field(default=5, ge=1, le=120)
    sma_long: int = Field(default=20, ge=2, le=240)
    breakout_bars: int = Field(default=10, ge=1, le=240)
    # entry
    entry_order_type: Literal["MKT", "LMT"] = "MKT"
    limit_slippage_ticks: int = Field(default=1, ge=0, le=20)
    # exits
    take_profit_pct: Decimal = Decimal(3)
    take_profit_fraction: Decimal = Decimal("0.5")
    take_profit2_pct: Decimal = Decimal(5)
    trailing_activate_pct: Decimal = Decimal("1.5")
    trailing_stop_pct: Decimal = Decimal("1.5")
    trend_break_buffer_pct: Decimal = Decimal("0.3")
    trend_min_hold_s: float = 120.0
    max_hold_min: float = 90.0

    @field_validator("take_profit_fraction")
    @classmethod
    def _fraction(cls, v: Decimal) -> Decimal:
        if not Decimal(0) < v <= Decimal(1):
            raise ValueError("must be in (0, 1]")
        return v
