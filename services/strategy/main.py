"""Entry point of the strategy service (`stock-manager run strategy`)."""

from __future__ import annotations

import functools
import sys

from services.strategy.app import StrategyApp
from services.strategy.config import StrategyConfig, load_config
from shared.service import ServiceContext, run_service
from shared.settings import SettingsError


async def body(ctx: ServiceContext, cfg: StrategyConfig | None = None) -> None:
    cfg = cfg or load_config()
    if "after_hours" not in cfg.model_fields_set:
        # paper KIS takes ORD_DVSN 00-04 only: no post-close (06) or after-hours (07) sells there
        cfg = cfg.model_copy(update={"after_hours": ctx.settings.kis_env != "paper"})
    app = StrategyApp(ctx.pool, ctx.clock, cfg, ctx.instance_id, ctx.stopping)
    ctx.info.update(workers=cfg.workers, strategy_version=cfg.strategy_version)
    await app.run()


def main() -> int:
    try:
        cfg = load_config()  # a malformed SM_STRATEGY_* stops the service with one line naming it
    except SettingsError as e:
        print(f"stock-manager strategy: {e}", file=sys.stderr)
        return 2
    # each worker uses one connection at a time; the process loops and the frame need about six more
    return run_service("strategy", functools.partial(body, cfg=cfg), pool_size=cfg.workers + 6)
