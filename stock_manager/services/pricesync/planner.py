"""Which symbols get one of the 41 WebSocket registrations, and which are polled instead.

KIS allows 41 registrations per session, counting the account notice subscription, and may block
an app key that subscribes and unsubscribes in a loop.  So the plan is conservative:

* a registration is only given up when a strictly more important symbol needs the slot (an
  unwatched symbol keeps its slot until then: unsubscribing buys nothing);
* a symbol keeps its slot for at least ``min_hold_s`` (wall seconds) unless a held position
  needs it;
* every change costs from a rolling budget of messages per minute;
* a symbol the server refused is not asked for again during a cool-down.

Everything here is pure: the caller supplies the watch list, what is subscribed since when, and
the monotonic time.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

SYMBOL_RE: Final = re.compile(r"^[0-9A-Z][0-9A-Z]{5,6}$")


class WatchClass(IntEnum):
    """Why a symbol is watched; lower is more important."""

    HELD = 0  # an open position: exits depend on this price
    LOCKED = 1  # a worker holds or is working the symbol
    CANDIDATE = 2  # a recent scan signalled it
    WATCHLIST = 3  # Strategy asked for it
    ACTIVE = 4  # among the market's most traded (KIS volume ranking): fills streams nobody else wants
    NONE = 9  # not watched any more (still subscribed, until the slot is wanted)


@dataclass(frozen=True, slots=True, order=True)
class WatchItem:
    cls: WatchClass
    rank: int
    symbol: str


def merge_watch(rows: Iterable[tuple[str, int, int]]) -> list[WatchItem]:
    """Rows of (symbol, class, rank) from Strategy's tables, best class per symbol, best first.

    Invalid codes are dropped here so that nothing downstream (a subscription, an upsert with a
    CHECK on the code) fails on them.
    """
    best: dict[str, WatchItem] = {}
    for symbol, cls, rank in rows:
        code = (symbol or "").strip()
        if not SYMBOL_RE.match(code):
            continue
        item = WatchItem(WatchClass(cls), int(rank), code)
        old = best.get(code)
        if old is None or (item.cls, item.rank) < (old.cls, old.rank):
            best[code] = item
    return sorted(best.values())


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    capacity: int  # registrations available for trade streams
    min_hold_s: float = 60.0
    max_changes_per_round: int = 41
    changes_per_minute: int = 80
    failure_cooldown_s: float = 300.0
    # An incumbent defends its slot with the best class it had within this many seconds, so a
    # symbol that flickers in and out of the candidates does not lose and regain its slot.
    class_memory_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Plan:
    desired: frozenset[str]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    wanted_but_unplaced: tuple[str, ...]  # watched symbols left to REST polling


@dataclass
class PlannerState:
    """What the planner remembers between rounds."""

    since: dict[str, float] = field(default_factory=dict)  # symbol -> monotonic time it was planned
    cooldown: dict[str, float] = field(default_factory=dict)  # symbol -> monotonic time it may be retried
    changes: deque[float] = field(default_factory=deque)  # monotonic times of recent messages
    seen: dict[str, tuple[int, float]] = field(default_factory=dict)  # symbol -> (best class, when)

    def refused(self, symbol: str, now: float, cfg: PlannerConfig) -> None:
        """The server refused the registration: drop it from the plan and wait before asking again."""
        self.since.pop(symbol, None)
        self.cooldown[symbol] = now + cfg.failure_cooldown_s

    def budget(self, now: float, cfg: PlannerConfig) -> int:
        while self.changes and now - self.changes[0] >= 60.0:
            self.changes.popleft()
        return max(0, min(cfg.max_changes_per_round, cfg.changes_per_minute - len(self.changes)))


def plan(watch: list[WatchItem], state: PlannerState, now: float, cfg: PlannerConfig) -> Plan:
    """The next desired set of trade subscriptions; updates ``state`` to match it."""
    for sym, until in list(state.cooldown.items()):
        if until <= now:
            del state.cooldown[sym]
    importance: dict[str, tuple[int, int]] = {w.symbol: (int(w.cls), w.rank) for w in watch}
    for w in watch:
        old = state.seen.get(w.symbol)
        if old is None or int(w.cls) <= old[0] or now - old[1] > cfg.class_memory_s:
            state.seen[w.symbol] = (int(w.cls), now)
    for sym, (_, when) in list(state.seen.items()):
        if now - when > cfg.class_memory_s:
            del state.seen[sym]
    unwatched = (int(WatchClass.NONE), 0)

    def weight(sym: str) -> tuple[int, int]:
        w = importance.get(sym, unwatched)
        remembered = state.seen.get(sym)
        if remembered is not None and remembered[0] < w[0]:
            return (remembered[0], w[1] if w is not unwatched else 1 << 30)
        return w

    keep = dict(state.since)
    removed: list[str] = []
    added: list[str] = []
    budget = state.budget(now, cfg)

    # A smaller capacity (configuration, or the notice slot) sheds the least important first.
    while len(keep) > cfg.capacity:
        victim = max(keep, key=lambda s: (weight(s), s))
        del keep[victim]
        removed.append(victim)

    free = cfg.capacity - len(keep)
    unplaced: list[str] = []
    for item in watch:
        if item.symbol in keep:
            continue
        if item.symbol in state.cooldown:
            unplaced.append(item.symbol)
            continue
        if budget <= 0:
            unplaced.append(item.symbol)
            continue
        if free > 0:
            keep[item.symbol] = now
            added.append(item.symbol)
            free -= 1
            budget -= 1
            continue
        displaced = _victim(keep, weight, item, now, cfg)
        if displaced is None or budget < 2:
            unplaced.append(item.symbol)
            continue
        del keep[displaced]
        removed.append(displaced)
        keep[item.symbol] = now
        added.append(item.symbol)
        budget -= 2

    for _ in range(len(added) + len(removed)):
        state.changes.append(now)
    state.since = keep
    return Plan(frozenset(keep), tuple(added), tuple(removed), tuple(unplaced))


def _victim(
    keep: Mapping[str, float],
    weight: Callable[[str], tuple[int, int]],
    challenger: WatchItem,
    now: float,
    cfg: PlannerConfig,
) -> str | None:
    """The least important incumbent the challenger may displace, if any.

    Only a strictly more important class displaces (same-class reshuffles would churn), and only
    an incumbent that has held its slot for ``min_hold_s``, unless the challenger is a held
    position and the incumbent is not.
    """
    best: tuple[tuple[int, int], str] | None = None
    for sym, since in keep.items():
        w = weight(sym)
        if w[0] <= int(challenger.cls):
            continue
        held_long_enough = now - since >= cfg.min_hold_s
        if not held_long_enough and not (challenger.cls is WatchClass.HELD and w[0] != int(WatchClass.HELD)):
            continue
        if best is None or (w, sym) > best:
            best = (w, sym)
    return best[1] if best is not None else None


def orderbook_symbols(desired: frozenset[str], watch: list[WatchItem], slots: int) -> frozenset[str]:
    """Order books (H0STASP0) only for held positions that already stream trades, best first."""
    if slots <= 0:
        return frozenset()
    held = [w.symbol for w in watch if w.cls is WatchClass.HELD and w.symbol in desired]
    return frozenset(held[:slots])
