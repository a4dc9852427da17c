"""REDUCING while PriceSync is stale, ACTIVE again when it is back (rules in ``rules/feed.py``).

Any number of Strategy processes run this; the write is a compare-and-set on the trading-state row
as it was read, so exactly one of them makes each move, and it records the move in ``ops.events`` in
the same transaction.  ``PriceSyncStale`` is an ERROR (an alert, ``monitor.alert_events``); the
REDUCING state itself also shows on the status screen and as an alert condition, with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from stock_manager.services.strategy import ops
from stock_manager.services.strategy.queries import Q
from stock_manager.services.strategy.rules.feed import Feed, FeedView, StateMove, feed_move, judge_feed
from stock_manager.services.strategy.runtime import Runtime, monotonic


@dataclass
class FeedGuard:
    rt: Runtime
    clock: Callable[[], float] = monotonic  # wall seconds, for how long this process has been up
    started: float = field(default=0.0)
    seen: Feed | None = None  # the last verdict, so a lasting condition is logged once

    def __post_init__(self) -> None:
        self.started = self.clock()

    async def round(self) -> StateMove | None:
        """Judge PriceSync's heartbeat once; the move made, if this process made one."""
        cfg = self.rt.cfg
        now = self.rt.now()
        async with self.rt.pool.connection() as conn:
            live = await (await conn.execute(Q["pricesync_liveness"])).fetchone()
            view = FeedView(live["live_age_s"] if live else None, live["any_age_s"] if live else None)
            feed = judge_feed(view, cfg.pricesync_stale_s, self.clock() - self.started)
            st = await (await conn.execute(Q["trading_state"])).fetchone()
            if feed is None or st is None:
                return None
            move = feed_move(st["state"], st["reason"], feed, view)
            if move is None:
                self._note(feed, st["state"], st["reason"], view)
                return None
            row = await (await conn.execute(Q["move_trading_state"], {
                "state": move.state, "reason": move.reason, "changed_by": f"strategy:{self.rt.instance_id}",
                "from_state": st["state"], "from_reason": st["reason"], "from_ts": st["changed_ts"]})).fetchone()
            if row is None:
                return None  # changed in between; the next round judges the new state
            if feed is Feed.STALE:
                await ops.emit(conn, "PriceSyncStale",
                               f"{move.reason}; trading REDUCING: no new entries, exits go on with REST quotes",
                               level="ERROR", market_ts=now, reason=move.reason, live_age_s=view.live_age_s,
                               any_age_s=view.any_age_s, stale_after_s=cfg.pricesync_stale_s,
                               from_state=st["state"], to_state=move.state)
            else:
                await ops.emit(conn, "PriceSyncRecovered",
                               f"{move.reason}; trading ACTIVE again (was REDUCING: {st['reason']})",
                               market_ts=now, reason=move.reason, live_age_s=view.live_age_s,
                               from_state=st["state"], from_reason=st["reason"], to_state=move.state)
        self.seen = feed
        return move

    def _note(self, feed: Feed, state: str, reason: str | None, view: FeedView) -> None:
        if feed is self.seen:
            return
        self.seen = feed
        if feed is Feed.STALE and state != "REDUCING":
            logger.warning("PriceSync heartbeat stale ({}s); trading state {} ({}) is left as it was set",
                           f"{view.any_age_s:.0f}" if view.any_age_s is not None else "never", state, reason or "-")
