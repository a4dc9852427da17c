"""The WebSocket reader: prints to ingest, notices to the relay, status to events; bad frames skipped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, time
from typing import Any

from loguru import logger

from stock_manager.services.pricesync.feed import WsFeed
from stock_manager.services.pricesync.ingest import Ingest
from stock_manager.services.pricesync.relay import NoticeRelay
from stock_manager.services.pricesync.report import Reporter
from stock_manager.shared.clock import KST, ManualClock
from stock_manager.shared.kis.endpoints import KisEnv
from stock_manager.shared.kis.models import Side
from stock_manager.shared.kis.ws import (
    Connected,
    Disconnected,
    MalformedFrame,
    Subscribed,
    Subscription,
    SubscriptionFailed,
    WsEvent,
)
from stock_manager.shared.kis.ws_frames import ExecutionNotice, RctfCls

from .helpers import trade

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=KST)


class ScriptedWs:
    last_message_at: float | None = None

    def __init__(self, script: list[WsEvent]) -> None:
        self._script = script
        self.connected = True
        self.active: frozenset[Subscription] = frozenset({Subscription.trades("005930")})

    def replace(self, subs: Iterable[Subscription]) -> None:
        return None

    async def events(self) -> AsyncIterator[WsEvent]:
        for ev in self._script:
            yield ev
            await asyncio.sleep(0)


NOTICE = ExecutionNotice(
    odno="7", oodno=None, side=Side.SELL, rctf_cls=RctfCls.NORMAL, ord_kind="01", ord_cond="0", symbol="005930",
    qty=3, price=70_000, time=time(10, 0, 1), is_fill=True, is_reject=False, acpt_yn="2", branch_no="06010",
    order_qty=3, order_price=None, cond_price=None, exchange="1", name="삼성전자", field_count=26,
)


async def test_the_reader_dispatches_and_survives_bad_frames() -> None:
    clock = ManualClock(T0)
    posted: list[tuple[str, dict[str, Any]]] = []

    async def emit(kind: str, message: str = "", **kw: Any) -> None:
        posted.append((kind, kw))

    report = Reporter(emit)
    ingest = Ingest("", clock)
    relay = NoticeRelay(None, clock, "H0STCNI0")  # type: ignore[arg-type]  # never runs here
    refused: list[str] = []
    script: list[WsEvent] = [
        Connected(1),
        Subscribed(Subscription.notices(KisEnv.REAL)),
        trade("005930", T0, 70_000),
        MalformedFrame("0|H0STCNT0|001|garbage^***", "H0STCNT0: 2 fields, expected 46"),
        trade("005930", T0, 70_100),
        NOTICE,
        SubscriptionFailed(Subscription.trades("000660"), "OPSP0008", "MAX SUBSCRIBE OVER"),
        Disconnected("connection closed (1006)", 1.0),
    ]
    ws = ScriptedWs(script)
    feed = WsFeed(ws, ingest, relay, clock=clock, report=report, on_refused=refused.append, on_status=lambda: None)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    try:
        await feed.run()
    finally:
        logger.remove(sink)
    assert ingest.pending == 2
    assert relay.backlog == 1
    assert refused == ["000660"]
    assert feed.state.malformed == 1
    assert any("malformed frame skipped" in line and "garbage" in line for line in lines)
    assert feed.state.connected is False
    assert feed.state.notices_subscribed is False
    assert feed.state.reason == "connection closed (1006)"
    assert feed.health().connected is False
    runner = asyncio.create_task(report.run())
    await asyncio.sleep(0.05)
    runner.cancel()
    assert [k for k, _ in posted] == ["WsConnected", "SubscriptionRefused", "WsDisconnected"]
