"""What every part of Execution shares: the database, the broker, the clock, settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stock_manager.shared.broker import Broker
from stock_manager.shared.clock import Clock
from stock_manager.shared.db.listen import Waker
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.market_rules import Fees
from stock_manager.shared.resources import package_path
from stock_manager.shared.sql import load_queries

Q = load_queries(*sorted(package_path(__package__, "sql").glob("*.sql")))
SERVICE = "execution"


@dataclass(frozen=True)
class ExecutionConfig:
    poll_s: float = 1.0  # the intent monitor's guarantee; NOTIFY makes it immediate
    batch: int = 64
    # orders in flight at once, from claim to recorded ack (so it covers the ack's group commit too)
    concurrency: int = 32
    send_deadline_s: float = 5.0  # never send an order written ahead longer ago than this
    in_doubt_grace_s: float = 5.0  # let a timed-out request settle before asking the broker
    stale_pending_s: float = 30.0
    owner_dead_after_s: float = 20.0
    reconcile_s: float = 15.0
    reconcile_fast_s: float = 5.0  # while the notice stream is down
    missing_fill_grace_s: float = 10.0
    lease_ttl_s: float = 45.0
    # each pass lists the broker's orders back to the oldest one still open here, less this margin
    # (market seconds) for clock differences with the broker; every full_listing_every-th pass (and
    # a process's first) lists the whole day
    listing_margin_s: float = 300.0
    full_listing_every: int = 20
    max_submit_attempts: int = 3
    # reconcile passes between comparisons of our positions with the broker's (the first pass compares)
    position_check_every: int = 2
    commission_rate: Fees = Decimal("0.00015")  # a flat rate or a schedule tiered by trade value

    @classmethod
    def from_env(cls, commission_rate: Fees) -> ExecutionConfig:
        def f(name: str, default: float) -> float:
            return float(os.environ.get(f"SM_EXEC_{name.upper()}", default))

        return cls(
            poll_s=f("poll_s", 1.0),
            reconcile_s=f("reconcile_s", 15.0),
            reconcile_fast_s=f("reconcile_fast_s", 5.0),
            missing_fill_grace_s=f("missing_fill_grace_s", 10.0),
            in_doubt_grace_s=f("in_doubt_grace_s", 5.0),
            stale_pending_s=f("stale_pending_s", 30.0),
            owner_dead_after_s=f("owner_dead_after_s", 20.0),
            lease_ttl_s=f("lease_ttl_s", 45.0),
            listing_margin_s=f("listing_margin_s", 300.0),
            full_listing_every=max(1, int(f("full_listing_every", 20))),
            position_check_every=max(1, int(f("position_check_every", 2))),
            commission_rate=commission_rate,
        )


@dataclass
class Exec:
    pool: Pool
    broker: Broker
    clock: Clock
    cfg: ExecutionConfig
    instance: str
    reconcile_now: Waker
    owner: str = field(init=False)
    sending: set[int] = field(default_factory=set)  # order ids this process has in flight
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # an incarnation, not just an instance: a restarted process must not think it owns the
        # orders its dead predecessor was sending
        self.owner = f"{self.instance}#{os.getpid()}"

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = int(self.stats.get(key, 0)) + n
