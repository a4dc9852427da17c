"""PriceSync's liveness, and the one change of trading state Strategy makes on its own account.

Every price Strategy acts on comes from PriceSync.  While PriceSync's heartbeat is stale nothing
new should be bought on its prices, so trading goes to REDUCING (no entries; exits go on, each on
a REST quote when the published one is too old).  When the heartbeat is fresh again trading goes
back to ACTIVE, but only from the REDUCING that Strategy itself set for this reason: an operator's
HALT or FLATTEN, or any other reason, is never overridden.  The reason prefix is how the two are
told apart (``stock-manager flatten`` writes ``FLATTEN: ...``, a halt is HALTED).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

STALE_PREFIX = "PRICESYNC_STALE"
RECOVERED_PREFIX = "PRICESYNC_RECOVERED"


class Feed(StrEnum):
    STALE = "STALE"
    FRESH = "FRESH"


class Standing(StrEnum):
    """The trading state as this rule sees it: whose it is decides whether it may be moved."""

    ACTIVE = "ACTIVE"
    REDUCING_STALE = "REDUCING_STALE"  # REDUCING, set by Strategy because PriceSync was stale
    OTHER = "OTHER"  # HALTED, FLATTEN or any other REDUCING: the operator's (or another rule's)


# The only moves Strategy makes on PriceSync's account; any other pair leaves the state alone.
FEED_TRANSITIONS: dict[tuple[Standing, Feed], str] = {
    (Standing.ACTIVE, Feed.STALE): "REDUCING",
    (Standing.REDUCING_STALE, Feed.FRESH): "ACTIVE",
}


@dataclass(frozen=True)
class FeedView:
    """Wall seconds on the database's clock since PriceSync last beat.

    ``live_age_s``: the newest beat of an instance still running (STARTING, RUNNING, DEGRADED);
    ``any_age_s``: the newest beat of any instance, a stopped one included.  None: no such beat.
    """

    live_age_s: float | None
    any_age_s: float | None


@dataclass(frozen=True)
class StateMove:
    state: str
    reason: str


def judge_feed(view: FeedView, stale_s: float, up_s: float) -> Feed | None:
    """FRESH or STALE; None while it is too early to tell.

    A Strategy that started less than ``stale_s`` ago gives PriceSync as long to send its first
    beat (``stock-manager up`` starts them together; yesterday's rows say STOPPED), so a normal
    start does not flap through REDUCING.
    """
    if view.live_age_s is not None and view.live_age_s <= stale_s:
        return Feed.FRESH
    if up_s < stale_s:
        return None
    return Feed.STALE


def standing(state: str, reason: str | None) -> Standing:
    if state == "ACTIVE":
        return Standing.ACTIVE
    if state == "REDUCING" and (reason or "").startswith(STALE_PREFIX):
        return Standing.REDUCING_STALE
    return Standing.OTHER


def stale_reason(view: FeedView) -> str:
    if view.any_age_s is None:
        return f"{STALE_PREFIX}: no heartbeat yet"
    return f"{STALE_PREFIX}: no heartbeat for {view.any_age_s:.0f}s"


def feed_move(state: str, reason: str | None, feed: Feed, view: FeedView) -> StateMove | None:
    """Where the trading state goes on this verdict, or None to leave it as it is."""
    to = FEED_TRANSITIONS.get((standing(state, reason), feed))
    if to is None:
        return None
    if feed is Feed.STALE:
        return StateMove(to, stale_reason(view))
    age = f"{view.live_age_s:.0f}s" if view.live_age_s is not None else "?"
    return StateMove(to, f"{RECOVERED_PREFIX}: heartbeat {age} old")
