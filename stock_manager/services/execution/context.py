"""What every part of Execution shares: the database, the broker, the clock, settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stock_manager.services.execution.ports import BrokerPort
from stock_manager.shared.clock import Clock
from stock_manager.shared.db.listen import Waker
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.market_rules import Fees
from stock_manager.shared.resources import package_path
from stock_manager.shared.settings import SettingsError
from stock_manager.shared.sql import load_queries

Q = load_queries(*sorted(package_path(__package__, "sql").glob("*.sql")))
SERVICE = "execution"


class ExecutionConfig(BaseSettings):
    """Execution's own settings (``SM_EXEC_*``), on top of the shared ``Settings``.

    Defaults are what production wants; tests and the benchmark shorten the times.  A malformed one
    stops the service at start with one line naming it (``load_config``).
    """

    model_config = SettingsConfigDict(env_prefix="SM_EXEC_", env_file=".env", extra="ignore", frozen=True)

    poll_s: float = Field(default=1.0, gt=0)  # the intent monitor's guarantee; NOTIFY makes it immediate
    batch: int = Field(default=64, ge=1)
    # orders in flight at once, from claim to recorded ack (so it covers the ack's group commit too)
    concurrency: int = Field(default=32, ge=1)
    send_deadline_s: float = Field(default=5.0, gt=0)  # never send an order written ahead longer ago than this
    in_doubt_grace_s: float = Field(default=5.0, ge=0)  # let a timed-out request settle before asking the broker
    stale_pending_s: float = Field(default=30.0, gt=0)
    owner_dead_after_s: float = Field(default=20.0, gt=0)
    reconcile_s: float = Field(default=15.0, gt=0)
    reconcile_fast_s: float = Field(default=5.0, gt=0)  # while the notice stream is down
    missing_fill_grace_s: float = Field(default=10.0, ge=0)
    lease_ttl_s: float = Field(default=45.0, gt=0)
    # each pass lists the broker's orders back to the oldest one still open here, less this margin
    # (market seconds) for clock differences with the broker; every full_listing_every-th pass (and
    # a process's first) lists the whole day
    listing_margin_s: float = Field(default=300.0, ge=0)
    full_listing_every: int = Field(default=20, ge=1)
    max_submit_attempts: int = Field(default=3, ge=1)
    # reconcile passes between comparisons of our positions with the broker's (the first pass compares)
    position_check_every: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _no_late_send(self) -> ExecutionConfig:
        # A resolver takes a write-ahead as abandoned once it is stale_pending_s old (and its owner
        # silent); a sender never sends one older than send_deadline_s.  The second must come first,
        # or a frozen sender could wake and send what a resolver has just re-sent.
        if self.send_deadline_s >= self.stale_pending_s:
            raise ValueError("must be shorter than SM_EXEC_STALE_PENDING_S")
        return self


def load_config(**overrides: object) -> ExecutionConfig:
    """Read ``SM_EXEC_*``, turning the first problem into one line that names the setting."""
    try:
        return ExecutionConfig(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        err = e.errors()[0]
        name = "SM_EXEC_" + (str(err["loc"][0]).upper() if err["loc"] else "SEND_DEADLINE_S")
        raise SettingsError(f"setting {name} is malformed: {err['msg']}") from None


@dataclass
class Exec:
    pool: Pool
    broker: BrokerPort
    clock: Clock
    cfg: ExecutionConfig
    instance: str
    reconcile_now: Waker
    fees: Fees = Decimal("0.00015")  # a flat commission rate or a schedule tiered by trade value
    owner: str = field(init=False)
    sending: set[int] = field(default_factory=set)  # order ids this process has in flight
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # an incarnation, not just an instance: a restarted process must not think it owns the
        # orders its dead predecessor was sending
        self.owner = f"{self.instance}#{os.getpid()}"

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = int(self.stats.get(key, 0)) + n
