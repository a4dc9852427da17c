"""Entry point of the strategy service (`stock-manager run strategy`)."""

from __future__ import annotations

import functools
import sys

from loguru import logger

from stock_manager.services.strategy.app import StrategyApp
from stock_manager.services.strategy.config import StrategyConfig, load_config
from stock_manager.services.strategy.loading import load_strategy
from stock_manager.services.strategy.port import Strategy
from stock_manager.services.strategy.quotes import BrokerQuotes, NoQuotes, QuoteSource
from stock_manager.shared.broker import Broker, open_broker
from stock_manager.shared.service import ServiceContext, run_service
from stock_manager.shared.settings import Mode, SettingsError


async def body(ctx: ServiceContext, cfg: StrategyConfig | None = None, strategy: Strategy | None = None) -> None:
    cfg = cfg or load_config()
    if "after_hours" not in cfg.model_fields_set:
        # paper KIS takes ORD_DVSN 00-04 only: no post-close (06) or after-hours (07) sells there
        cfg = cfg.model_copy(update={"after_hours": ctx.settings.kis_env != "paper"})
    broker = _broker(ctx)
    quotes: QuoteSource = BrokerQuotes(broker.rest) if broker else NoQuotes("no KIS credentials in this mode")
    app = StrategyApp(ctx.pool, ctx.clock, cfg, ctx.instance_id, ctx.stopping, quotes=quotes, strategy=strategy)
    if broker is not None and ctx.settings.sm_mode is not Mode.SIM:
        app.calendar.kis = broker.rest  # KIS's chk-holiday, once a day: the broker decides what trades
    ctx.info.update(workers=cfg.workers, strategy_version=app.rt.strategy_version, rest_quotes=broker is not None)
    try:
        await app.run()
    finally:
        if broker is not None:
            await broker.aclose()


def _broker(ctx: ServiceContext) -> Broker | None:
    """The KIS client for REST quotes, on the app key's shared token and budget, as PriceSync's and
    Execution's.  Without credentials Strategy still runs: a stale quote then waits for a fresh one."""
    try:
        return open_broker(ctx.settings, ctx.pool, ctx.settings.role_url("strategy"), ctx.clock)
    except SettingsError as e:
        logger.error("{}: no REST quotes, so an exit on a stale quote waits for PriceSync's next price", e)
        return None


def main() -> int:
    try:
        cfg = load_config()  # a malformed SM_STRATEGY_* stops the service with one line naming it
        strategy = load_strategy(cfg.strategy)  # and so does a strategy that cannot be found or loaded
    except SettingsError as e:
        print(f"stock-manager strategy: {e}", file=sys.stderr)
        return 2
    # each worker uses one connection at a time; the process loops, the frame and the shared REST
    # budget need about seven more
    return run_service("strategy", functools.partial(body, cfg=cfg, strategy=strategy), pool_size=cfg.workers + 7)
