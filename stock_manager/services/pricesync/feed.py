"""The WebSocket side: one reader turning the adapter's events into ingest, relay and status.

The adapter (``stock_manager.shared.kis.ws.KisWebSocketClient``) owns the session: it reconnects with back-off,
resubscribes, answers PINGPONG and parses frames.  This reader must keep up with 20,000 prints a
second, so a trade costs one ``add_trade`` (an append) and nothing else; everything that talks to
the database (events, feed status) is handed to other tasks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from loguru import logger

from stock_manager.shared.clock import Clock
from stock_manager.shared.kis.endpoints import WS_NOTICE_TRS, WS_TRADE_TR
from stock_manager.shared.kis.ws import (
    Connected,
    ControlError,
    Disconnected,
    MalformedFrame,
    Subscribed,
    Subscription,
    SubscriptionFailed,
    Unsubscribed,
    WsEvent,
)
from stock_manager.shared.kis.ws_frames import ExecutionNotice, OrderBook, Trade

from .freshness import WsHealth
from .ingest import Ingest
from .relay import NoticeRelay
from .report import Reporter

YIELD_EVERY = 256


class WsClient(Protocol):
    """What the feed needs of ``KisWebSocketClient``."""

    last_message_at: float | None

    @property
    def connected(self) -> bool: ...

    @property
    def active(self) -> frozenset[Subscription]: ...

    def replace(self, subs: Iterable[Subscription]) -> None: ...

    def events(self) -> AsyncIterator[WsEvent]: ...


@dataclass
class FeedState:
    connected: bool = False
    sessions: int = 0
    connected_mono: float | None = None
    last_connect: datetime | None = None
    last_disconnect: datetime | None = None
    reason: str | None = None
    notices_subscribed: bool = False
    notice_refused_mono: float | None = None
    refused: int = 0
    malformed: int = 0
    last_event_mono: float | None = None


class _Throttle:
    """At most ``burst`` log lines per ``period_s``; the rest are counted and summarised."""

    def __init__(self, burst: int = 5, period_s: float = 60.0) -> None:
        self._burst = burst
        self._period = period_s
        self._start = 0.0
        self._count = 0
        self.suppressed = 0

    def allow(self, now: float) -> bool:
        if now - self._start >= self._period:
            if self.suppressed:
                logger.warning("{} more malformed frames in the last {:.0f}s (not shown)", self.suppressed,
                               self._period)
            self._start, self._count, self.suppressed = now, 0, 0
        if self._count < self._burst:
            self._count += 1
            return True
        self.suppressed += 1
        return False


class WsFeed:
    def __init__(
        self,
        ws: WsClient,
        ingest: Ingest,
        relay: NoticeRelay,
        *,
        clock: Clock,
        report: Reporter,
        on_refused: Callable[[str], None],
        on_status: Callable[[], None],
    ) -> None:
        self.ws = ws
        self._ingest = ingest
        self._relay = relay
        self._clock = clock
        self._report = report
        self._on_refused = on_refused
        self._on_status = on_status
        self.state = FeedState()
        self._malformed_log = _Throttle()

    def health(self) -> WsHealth:
        """The WebSocket's side of freshness: up, which trade streams are acknowledged, how quiet."""
        connected = self.state.connected and self.ws.connected
        if not connected:
            return WsHealth(False, frozenset(), 0.0)
        active = frozenset(s.tr_key for s in self.ws.active if s.tr_id == WS_TRADE_TR)
        heard = self.ws.last_message_at or self.state.connected_mono or time.monotonic()
        return WsHealth(True, active, max(0.0, time.monotonic() - heard))

    def last_frame_ts(self) -> datetime | None:
        """Market time the session last heard anything (PINGPONG included)."""
        heard = self.ws.last_message_at
        if heard is None:
            return None
        return self._clock.now() - timedelta(seconds=(time.monotonic() - heard) * self._clock.speed)

    async def run(self) -> None:
        ingest = self._ingest
        burst = 0
        async for ev in self.ws.events():
            if isinstance(ev, Trade):
                ingest.add_trade(ev)
                if ingest.full:
                    await ingest.wait_room()
                burst += 1
                if burst >= YIELD_EVERY:
                    # A queue that is never empty never suspends this loop; let the writer in.
                    burst = 0
                    await asyncio.sleep(0)
            elif isinstance(ev, OrderBook):
                ingest.add_book(ev)
            elif isinstance(ev, ExecutionNotice):
                self._relay.submit(ev)
            else:
                self._status(ev)

    def _status(self, ev: WsEvent) -> None:
        st = self.state
        now = self._clock.now()
        if isinstance(ev, Connected):
            st.connected, st.sessions, st.connected_mono = True, ev.session, time.monotonic()
            st.last_connect, st.reason = now, None
            self._report.post("WsConnected", f"kis websocket connected (session {ev.session})", session=ev.session)
            self._changed()
        elif isinstance(ev, Disconnected):
            st.connected, st.notices_subscribed = False, False
            st.last_disconnect, st.reason = now, ev.reason
            self._report.post("WsDisconnected", f"kis websocket lost: {ev.reason}", level="WARN", reason=ev.reason,
                              retry_in_s=round(ev.retry_in, 1))
            self._changed()
        elif isinstance(ev, Subscribed):
            if ev.subscription.tr_id in WS_NOTICE_TRS:
                st.notices_subscribed = True
                st.notice_refused_mono = None
                self._changed()
        elif isinstance(ev, Unsubscribed):
            if ev.subscription.tr_id in WS_NOTICE_TRS:
                st.notices_subscribed = False
                self._changed()
        elif isinstance(ev, SubscriptionFailed):
            st.refused += 1
            sub = ev.subscription
            if sub.tr_id in WS_NOTICE_TRS:
                st.notices_subscribed = False
                st.notice_refused_mono = time.monotonic()
                st.reason = f"notice subscription refused: {ev.msg_cd}"
                self._report.post("NoticeSubscriptionRefused", f"{ev.msg_cd} {ev.msg1}", level="ERROR",
                                  msg_cd=ev.msg_cd)
                self._changed()
            else:
                self._on_refused(sub.tr_key)
                self._report.post("SubscriptionRefused", f"{sub.tr_id} {sub.tr_key}: {ev.msg_cd} {ev.msg1}",
                                  level="WARN", symbol=sub.tr_key, tr_id=sub.tr_id, msg_cd=ev.msg_cd)
        elif isinstance(ev, ControlError):
            self._report.post("WsControlError", f"{ev.tr_id} {ev.msg_cd} {ev.msg1}", level="ERROR",
                              msg_cd=ev.msg_cd)
        elif isinstance(ev, MalformedFrame):
            st.malformed += 1
            if self._malformed_log.allow(time.monotonic()):
                # the adapter masked the HTS ID and approval key; the logger redacts known secrets
                logger.warning("malformed frame skipped ({}): {}", ev.reason, ev.raw[:2000])
        # RawRecord: a TR we do not model; nothing to do

    def _changed(self) -> None:
        self._ingest.poke()
        self._on_status()
