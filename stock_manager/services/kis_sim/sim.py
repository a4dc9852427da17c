"""The simulator's state, shared by the REST routes, the control API and the WebSocket hub."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from stock_manager.shared.clock import Clock, ScaledClock

from .auth import Auth
from .broker import Broker
from .config import SimConfig
from .faults import Dice, Faults, RateLimiter
from .persist import DurableNotices, Store
from .ws import Hub


class Sim:
    """One simulator; with ``data_dir`` it keeps its accounts, orders, fills, tokens and clock there.

    Without a data directory everything lives in memory and a restart starts afresh (the tests'
    disposable simulators); with one, a restart resumes where the last run stopped (persist.py).
    """

    def __init__(self, config: SimConfig, wall: Clock | None = None, data_dir: Path | None = None) -> None:
        self.config = config
        self.clock = ScaledClock(config.clock_start, config.clock_speed)
        self.broker = Broker(config, self.clock)
        # tokens and approval keys live on the wall clock, as at KIS; the market clock is for the market
        self.wall: Clock = wall or ScaledClock()
        self.auth = Auth(config, self.wall)
        self.faults = Faults.defaults(config)
        self.limiter = RateLimiter()
        self.dice = Dice(config.seed)
        # ground truth about the gateway itself, for benchmarks and tests (GET /sim/stats)
        self.stats: dict[str, int] = {"requests": 0, "rate_limited": 0, "fault_responses": 0,
                                      "service_not_found": 0}
        # the requests that passed the token check, by the TR id they sent (paper's must be V-prefixed)
        self.tr_ids: Counter[str] = Counter()
        self.hub = Hub(self)
        self.broker.notices = self.hub
        self.broker.exchange_reject_rate = self.faults.exchange_reject_rate
        self.store: Store | None = None
        if data_dir is not None:
            self.store = Store(data_dir, self.broker, self.auth, self.clock)
            self.store.restore()
            self.broker.notices = DurableNotices(self.hub, self.store)

    def set_faults(self, changes: dict[str, object]) -> None:
        self.faults.update(dict(changes))
        self.broker.exchange_reject_rate = self.faults.exchange_reject_rate
        self.hub.faults_changed()

    def reset(self) -> None:
        """Forget orders, fills and balances and restore default limits; tokens and the clock stay."""
        self.broker.reset()
        self.faults = Faults.defaults(self.config)
        self.broker.exchange_reject_rate = 0.0
        self.limiter.clear()
        self.hub.faults_changed()
        if self.store is not None:
            self.store.reset()
