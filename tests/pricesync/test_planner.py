"""The subscription planner: priorities, the 41-registration limit, and no subscribe/unsubscribe loops."""

from __future__ import annotations

from stock_manager.services.pricesync.planner import (
    PlannerConfig,
    PlannerState,
    WatchClass,
    WatchItem,
    merge_watch,
    orderbook_symbols,
    plan,
)

CFG = PlannerConfig(capacity=40, min_hold_s=60.0, changes_per_minute=200, failure_cooldown_s=300.0)


def sym(i: int) -> str:
    return f"{i:06d}"


def items(cls: WatchClass, first: int, n: int) -> list[WatchItem]:
    return [WatchItem(cls, r, sym(first + r)) for r in range(n)]


def test_merge_keeps_the_best_class_and_drops_bad_codes() -> None:
    rows = [("005930", 3, 1), ("005930", 0, 5), ("000660", 2, 1), ("bad", 0, 1), ("", 1, 1), (" 035720 ", 1, 2)]
    watch = merge_watch(rows)
    assert [(w.symbol, w.cls) for w in watch] == [
        ("005930", WatchClass.HELD),
        ("035720", WatchClass.LOCKED),
        ("000660", WatchClass.CANDIDATE),
    ]


def test_fills_capacity_most_important_first_and_never_exceeds_it() -> None:
    watch = sorted(
        items(WatchClass.WATCHLIST, 100, 50) + items(WatchClass.HELD, 1, 3) + items(WatchClass.CANDIDATE, 50, 5)
    )
    state = PlannerState()
    p = plan(watch, state, 0.0, CFG)
    assert len(p.desired) == 40
    assert {sym(1), sym(2), sym(3)} <= p.desired
    assert {sym(50 + i) for i in range(5)} <= p.desired
    assert len(p.wanted_but_unplaced) == 58 - 40
    assert all(s.startswith("0001") for s in p.wanted_but_unplaced)  # the watch-list tail goes to REST


def test_unwatched_symbols_keep_their_slot_until_it_is_wanted() -> None:
    state = PlannerState()
    plan(items(WatchClass.WATCHLIST, 100, 40), state, 0.0, CFG)
    # nothing is watched any more: nothing is unsubscribed either (it would buy nothing)
    p = plan([], state, 1000.0, CFG)
    assert len(p.desired) == 40 and p.removed == ()
    # a new watch list takes the slots over, because unwatched symbols are the least important
    p = plan(items(WatchClass.WATCHLIST, 500, 40), state, 2000.0, CFG)
    assert len(p.desired) == 40 and len(p.removed) == 20  # the round's budget: 41 messages


def test_a_recently_important_symbol_defends_its_slot() -> None:
    state = PlannerState()
    plan(sorted([WatchItem(WatchClass.CANDIDATE, 1, sym(7)), *items(WatchClass.WATCHLIST, 100, 39)]), state, 0.0,
         CFG)
    # sym 7 drops out of the candidates; a watch-list symbol wants a slot
    p = plan(items(WatchClass.WATCHLIST, 100, 40), state, 100.0, CFG)
    assert sym(7) in p.desired and p.removed == ()
    # after the class memory it is just an unwatched symbol
    p = plan(items(WatchClass.WATCHLIST, 100, 40), state, 400.0, CFG)
    assert sym(7) not in p.desired and p.removed == (sym(7),)


def test_a_more_important_symbol_displaces_only_after_the_minimum_hold() -> None:
    state = PlannerState()
    plan(items(WatchClass.WATCHLIST, 100, 40), state, 0.0, CFG)
    challenger = [*items(WatchClass.WATCHLIST, 100, 40), WatchItem(WatchClass.CANDIDATE, 1, sym(7))]
    early = plan(sorted(challenger), state, 30.0, CFG)
    assert sym(7) not in early.desired and early.removed == ()
    late = plan(sorted(challenger), state, 61.0, CFG)
    assert sym(7) in late.desired
    assert len(late.removed) == 1 and len(late.desired) == 40
    # the displaced one is the least important (highest rank) of the watch list
    assert late.removed == (sym(139),)


def test_a_held_position_does_not_wait_for_the_minimum_hold() -> None:
    state = PlannerState()
    plan(items(WatchClass.CANDIDATE, 100, 40), state, 0.0, CFG)
    watch = sorted([*items(WatchClass.CANDIDATE, 100, 40), WatchItem(WatchClass.HELD, 1, sym(9))])
    p = plan(watch, state, 1.0, CFG)
    assert sym(9) in p.desired and len(p.desired) == 40


def test_no_flapping_when_two_classes_alternate() -> None:
    """A symbol that keeps moving in and out of the candidates costs at most a swap per hold time."""
    state = PlannerState()
    base = items(WatchClass.WATCHLIST, 100, 40)
    changes = 0
    now = 0.0
    for step in range(600):  # ten minutes, one plan a second
        now = float(step)
        hot = [WatchItem(WatchClass.CANDIDATE, 1, sym(7))] if (step // 3) % 2 == 0 else []
        p = plan(sorted(base + hot), state, now, CFG)
        changes += len(p.added) + len(p.removed)
    first_fill = 40
    assert changes == first_fill


def test_change_budget_caps_messages_per_minute() -> None:
    cfg = PlannerConfig(capacity=40, min_hold_s=0.0, changes_per_minute=10)
    state = PlannerState()
    p = plan(items(WatchClass.WATCHLIST, 100, 40), state, 0.0, cfg)
    assert len(p.added) == 10
    p = plan(items(WatchClass.WATCHLIST, 100, 40), state, 30.0, cfg)
    assert p.added == ()
    p = plan(items(WatchClass.WATCHLIST, 100, 40), state, 61.0, cfg)
    assert len(p.added) == 10


def test_refused_symbols_cool_down() -> None:
    state = PlannerState()
    watch = items(WatchClass.HELD, 1, 2)
    plan(watch, state, 0.0, CFG)
    state.refused(sym(1), 1.0, CFG)
    p = plan(watch, state, 2.0, CFG)
    assert sym(1) not in p.desired and sym(1) in p.wanted_but_unplaced
    p = plan(watch, state, 302.0, CFG)
    assert sym(1) in p.desired


def test_shrinking_capacity_sheds_the_least_important() -> None:
    state = PlannerState()
    watch = sorted(items(WatchClass.HELD, 1, 5) + items(WatchClass.WATCHLIST, 100, 35))
    plan(watch, state, 0.0, CFG)
    p = plan(watch, state, 1.0, PlannerConfig(capacity=38))
    assert len(p.desired) == 38
    assert {sym(i) for i in range(1, 6)} <= p.desired


def test_orderbooks_only_for_streamed_held_positions() -> None:
    watch = sorted(items(WatchClass.HELD, 1, 3) + items(WatchClass.WATCHLIST, 100, 3))
    desired = frozenset({sym(1), sym(3), sym(100)})
    assert orderbook_symbols(desired, watch, 0) == frozenset()
    assert orderbook_symbols(desired, watch, 1) == frozenset({sym(1)})
    assert orderbook_symbols(desired, watch, 5) == frozenset({sym(1), sym(3)})
