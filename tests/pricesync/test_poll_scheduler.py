"""Which symbol the REST poller asks for next."""

from __future__ import annotations

from stock_manager.services.pricesync.freshness import FreshnessRules
from stock_manager.services.pricesync.planner import WatchClass, WatchItem
from stock_manager.services.pricesync.poller import PollConfig, PollScheduler

RULES = FreshnessRules()  # REST window 15 s market, WS 60 s
NONE: frozenset[str] = frozenset()


def never(_: str) -> float | None:
    return None


def sched(**kw: float) -> PollScheduler:
    return PollScheduler(PollConfig(**kw), RULES)


def test_watched_unstreamed_symbols_go_first_by_class() -> None:
    s = sched(sweep_per_s=0)
    s.watch = sorted([WatchItem(WatchClass.WATCHLIST, 1, "000001"), WatchItem(WatchClass.HELD, 1, "000002")])
    assert s.pick(0.0, 1.0, NONE, never) == ("000002", "held")
    s.started("000002")
    assert s.pick(0.0, 1.0, NONE, never) == ("000001", "watchlist")
    s.started("000001")
    assert s.pick(0.0, 1.0, NONE, never) is None  # both in flight


def test_polled_again_after_half_the_rest_window() -> None:
    s = sched(sweep_per_s=0)
    s.watch = [WatchItem(WatchClass.HELD, 1, "000002")]
    s.started("000002")
    s.finished("000002", 0.0, ok=True)
    assert s.pick(7.0, 1.0, NONE, never) is None
    assert s.pick(7.6, 1.0, NONE, never) == ("000002", "held")
    # at 60x the window has a wall floor of 3 s, so half of it is 1.5 wall seconds
    assert s.pick(1.6, 60.0, NONE, never) == ("000002", "held")


def test_streamed_symbols_are_only_verified_when_quiet() -> None:
    s = sched(sweep_per_s=0)
    s.watch = [WatchItem(WatchClass.HELD, 1, "000002")]
    streamed = frozenset({"000002"})
    assert s.pick(100.0, 1.0, streamed, lambda _: 90.0) is None  # a print 10 s ago
    assert s.pick(100.0, 1.0, streamed, lambda _: 50.0) == ("000002", "verify")  # quiet for 50 s


def test_errors_back_off() -> None:
    s = sched(sweep_per_s=0)
    s.watch = [WatchItem(WatchClass.HELD, 1, "000002")]
    s.started("000002")
    s.finished("000002", 0.0, ok=False)
    assert s.pick(0.5, 1.0, NONE, never) is None
    assert s.pick(1.1, 1.0, NONE, never) == ("000002", "held")


def test_sweep_covers_the_universe_at_its_rate_and_skips_what_is_covered() -> None:
    s = sched(sweep_per_s=2.0)
    s.universe = ["000001", "000002", "000003", "000004"]
    s.watch = [WatchItem(WatchClass.WATCHLIST, 1, "000002")]
    s.started("000002")  # the watched one is busy
    streamed = frozenset({"000003"})
    seen = []
    now = 0.0
    while now < 5.0:
        pick = s.pick(now, 1.0, streamed, never)
        if pick is not None:
            seen.append(pick)
            s.started(pick[0])
            s.finished(pick[0], now, ok=True)
        now += 0.05
    swept = [sym for sym, why in seen if why == "sweep"]
    assert set(swept) == {"000001", "000004"}
    assert 8 <= len(swept) <= 12  # 2 per second for 5 s (plus the first token)


def test_seed_symbols_are_polled_once_first() -> None:
    s = sched(sweep_per_s=0)
    s.seed = {"000009"}
    assert s.pick(0.0, 1.0, NONE, never) == ("000009", "seed")
    s.started("000009")
    s.finished("000009", 0.0, ok=True)
    assert s.seed == set()
