"""Entry point of the Execution service (``stock-manager run execution``).

Four loops share one process: the intent monitor (woken by NOTIFY, polling as the guarantee),
notice intake (woken by PriceSync's relay), cancel requests, and the reconciler (only while this
process holds the lease).  Several Execution processes may run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys

from loguru import logger

from stock_manager.services.execution.cancels import CancelProcessor
from stock_manager.services.execution.context import Exec, ExecutionConfig, load_config
from stock_manager.services.execution.funds import FundsView
from stock_manager.services.execution.notices import NoticeApplier
from stock_manager.services.execution.ports import KisBroker
from stock_manager.services.execution.reconciler import Reconciler
from stock_manager.services.execution.submitter import Submitter
from stock_manager.shared.broker import open_broker
from stock_manager.shared.db.listen import Waker
from stock_manager.shared.service import ServiceContext, run_service
from stock_manager.shared.settings import SettingsError


async def body(ctx: ServiceContext, cfg: ExecutionConfig) -> None:
    broker = open_broker(ctx.settings, ctx.pool, ctx.settings.role_url("execution"), ctx.clock)
    port = KisBroker(broker.rest, broker.limiter)
    ex = Exec(ctx.pool, port, ctx.clock, cfg, ctx.instance_id, Waker(), fees=ctx.settings.fees, stats=ctx.info)
    funds = FundsView(ex.fees, port.buying_power)
    notices = NoticeApplier(ex, funds)
    submitter = Submitter(ex, funds, notices)
    reconciler = Reconciler(ex, notices, submitter, funds)
    cancels = CancelProcessor(ex)
    intents_waker = ctx.listener.waker("trade_intents")
    cancel_waker = ctx.listener.waker("trade_cancels")
    notice_waker = ctx.listener.waker("broker_notices")

    async def notice_loop() -> None:
        while not ctx.stopping.is_set():
            try:
                await notices.drain()
            except Exception as e:  # the loop outlives a bad drain; the next wake-up or poll retries
                logger.exception("notice intake failed: {}", type(e).__name__)
            await notice_waker.wait(cfg.poll_s)

    tasks = [
        asyncio.create_task(submitter.run(intents_waker, ctx.stopping), name="intents"),
        asyncio.create_task(notice_loop(), name="notices"),
        asyncio.create_task(cancels.run(cancel_waker, ctx.stopping), name="cancels"),
        asyncio.create_task(reconciler.run(ctx.stopping), name="reconciler"),
    ]
    try:
        await ctx.stopping.wait()
    finally:
        # stop claiming, but let orders already on their way finish recording their outcome
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(submitter.drain(), 20)
        await broker.aclose()


def main() -> int:
    try:
        cfg = load_config()  # a malformed SM_EXEC_* stops the service with one line naming it
    except SettingsError as e:
        print(f"stock-manager execution: {e}", file=sys.stderr)
        return 2
    return run_service("execution", functools.partial(body, cfg=cfg))
