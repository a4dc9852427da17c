"""PriceSync's own settings (``SM_PRICESYNC_*``), on top of the shared ``Settings``.

Defaults are what production wants; tests and the benchmark shorten the times.
"""

from __future__ import annotations

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stock_manager.shared.kis.endpoints import MAX_WS_REGISTRATIONS
from stock_manager.shared.settings import Mode, SettingsError

from .freshness import FreshnessRules, Window
from .ingest import IngestConfig
from .planner import PlannerConfig
from .poller import PollConfig

# The official sample's download locations (open-trading-api, stocks_info/*_code_mst.py).
DEFAULT_MASTER_URLS = (
    "https://new.real.download.dws.co.kr/common/master/kospi_code.mst.zip",
    "https://new.real.download.dws.co.kr/common/master/kosdaq_code.mst.zip",
)


class PriceSyncConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SM_PRICESYNC_", env_file=".env", extra="ignore")

    # symbol master (paper/live); comma-separated in the environment
    master_urls: str = ",".join(DEFAULT_MASTER_URLS)
    master_timeout_s: float = Field(default=30.0, gt=0)

    # WebSocket plan
    ws_registrations: int = Field(default=MAX_WS_REGISTRATIONS, ge=2, le=MAX_WS_REGISTRATIONS)
    orderbook_slots: int = Field(default=0, ge=0, le=20)
    plan_interval_s: float = Field(default=2.0, gt=0)
    # the KIS volume ranking fills free streams with the market's busiest names (real KIS only)
    most_active_n: int = Field(default=30, ge=0, le=30)
    most_active_refresh_s: float = Field(default=300.0, gt=0)
    min_hold_s: float = Field(default=60.0, ge=0)
    changes_per_minute: int = Field(default=80, ge=2)
    failure_cooldown_s: float = Field(default=300.0, ge=0)
    notice_retry_s: float = Field(default=30.0, gt=0)
    candidate_window_s: float = Field(default=1800.0, gt=0)  # market seconds a signal stays "recent"

    # REST polling
    poll_workers: int = Field(default=2, ge=1, le=8)
    sweep_per_s: float | None = Field(default=None, ge=0)  # None: 15 % of the app key's rate limit

    # ingest
    batch_ms: float = Field(default=25.0, gt=0, le=1000)
    max_pending: int = Field(default=200_000, ge=1000)
    candle_grace_market_s: float = Field(default=3.0, ge=0)
    candle_grace_wall_s: float = Field(default=1.5, ge=0)

    # freshness windows: market seconds, clamped to [floor, cap] wall seconds
    ws_fresh_s: float = Field(default=60.0, gt=0)
    ws_fresh_floor_wall_s: float = Field(default=3.0, gt=0)
    rest_fresh_s: float = Field(default=15.0, gt=0)
    rest_fresh_floor_wall_s: float = Field(default=3.0, gt=0)
    fresh_cap_wall_s: float = Field(default=120.0, gt=0)
    ws_silence_wall_s: float = Field(default=45.0, gt=0)

    status_interval_s: float = Field(default=1.0, gt=0)

    # recording for replays (market.books, quotes, symbol_days, designation_history); unset: on in
    # paper and live mode, off in sim mode (the simulator's day can be made again from its seed)
    record: bool | None = None

    @model_validator(mode="after")
    def _room_for_trades(self) -> PriceSyncConfig:
        if self.orderbook_slots > self.ws_registrations - 2:
            raise ValueError("orderbook_slots leaves no registration for trades (one is the notice feed)")
        return self

    @property
    def master_url_list(self) -> list[str]:
        return [u.strip() for u in self.master_urls.split(",") if u.strip()]

    def rules(self) -> FreshnessRules:
        return FreshnessRules(
            ws=Window(self.ws_fresh_s, self.ws_fresh_floor_wall_s, self.fresh_cap_wall_s),
            rest=Window(self.rest_fresh_s, self.rest_fresh_floor_wall_s, self.fresh_cap_wall_s),
            ws_silence_wall_s=self.ws_silence_wall_s,
        )

    def planner(self) -> PlannerConfig:
        # one registration is the account notice feed, some may go to order books
        return PlannerConfig(
            capacity=self.ws_registrations - 1 - self.orderbook_slots,
            min_hold_s=self.min_hold_s,
            max_changes_per_round=self.ws_registrations,
            changes_per_minute=self.changes_per_minute,
            failure_cooldown_s=self.failure_cooldown_s,
        )

    def recording(self, mode: Mode) -> bool:
        return self.record if self.record is not None else mode is not Mode.SIM

    def ingest(self, mode: Mode = Mode.SIM) -> IngestConfig:
        return IngestConfig(
            batch_window_s=self.batch_ms / 1000.0,
            max_pending=self.max_pending,
            candle_grace_market_s=self.candle_grace_market_s,
            candle_grace_wall_s=self.candle_grace_wall_s,
            record=self.recording(mode),
        )

    def poll(self, rate_limit: int) -> PollConfig:
        sweep = self.sweep_per_s if self.sweep_per_s is not None else (0.15 * rate_limit if rate_limit else 3.0)
        return PollConfig(sweep_per_s=sweep)


def load_config(**overrides: object) -> PriceSyncConfig:
    try:
        return PriceSyncConfig(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        err = e.errors()[0]
        name = "SM_PRICESYNC_" + str(err["loc"][0]).upper() if err["loc"] else "SM_PRICESYNC_ORDERBOOK_SLOTS"
        raise SettingsError(f"setting {name} is malformed: {err['msg']}") from None
