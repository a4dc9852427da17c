"""Entry point of the pricesync service (`stock-manager run pricesync`)."""

from __future__ import annotations

from stock_manager.shared.broker import Broker, open_broker, open_websocket
from stock_manager.shared.kis.ports import Priority
from stock_manager.shared.service import ServiceContext, run_service

from .app import Deps, PriceSync
from .config import load_config


async def body(ctx: ServiceContext) -> None:
    """Wire the KIS clients to the shared token and budget, then run PriceSync until stopped."""
    cfg = load_config()
    conninfo = ctx.settings.role_url("pricesync")
    broker = open_broker(ctx.settings, ctx.pool, conninfo, ctx.clock)
    ws = open_websocket(ctx.settings, broker)

    def set_status(status: str) -> None:
        ctx.heartbeat.status = status

    deps = Deps(
        pool=ctx.pool,
        clock=ctx.clock,
        conninfo=conninfo,
        rest=broker.rest,
        ws=ws,
        env=broker.env,
        mode=ctx.settings.sm_mode,
        rest_url=ctx.settings.rest_url,
        rate_limit=ctx.settings.rate_limit,
        emit=ctx.emit,
        info=ctx.info,
        set_status=set_status,
        most_active=lambda: _most_active(broker),
    )
    try:
        await PriceSync(deps, cfg).run()
    finally:
        await ws.aclose()
        await broker.aclose()


async def _most_active(broker: Broker) -> list[str]:
    rows = await broker.rest.volume_rank(rank_by="3", priority=Priority.POLL)  # by traded value
    return [r.symbol for r in sorted(rows, key=lambda r: r.rank)]


def main() -> int:
    return run_service("pricesync", body)
