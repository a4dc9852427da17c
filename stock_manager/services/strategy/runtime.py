"""What every part of the Strategy service shares: pool, clock, settings, parameters, stop flag,
and the broker's quotes (for a held symbol whose published price is stale)."""

from __future__ import annotations

import asyncio
import time as _time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from loguru import logger
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from stock_manager.services.strategy.config import StrategyConfig
from stock_manager.services.strategy.loading import one_line
from stock_manager.services.strategy.port import Strategy, StrategyParams, label
from stock_manager.services.strategy.queries import Q
from stock_manager.services.strategy.quotes import NoQuotes, QuoteSource
from stock_manager.services.strategy.rules.market_state import EntryGates
from stock_manager.services.strategy.rules.risk import RiskLimits
from stock_manager.shared.clock import Clock
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.market_rules import trade_date
from stock_manager.shared.settings import SettingsError


@dataclass(frozen=True)
class ParamsVersion:
    version: str
    strategy_version: str
    params: StrategyParams


@dataclass
class Runtime:
    pool: Pool
    clock: Clock
    cfg: StrategyConfig
    instance_id: str
    strategy: Strategy
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    quotes: QuoteSource = field(default_factory=lambda: NoQuotes("no broker quote source configured"))
    _params: dict[date, ParamsVersion] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return trade_date(self.clock.now())

    @property
    def strategy_version(self) -> str:
        """What intents record: the operator's SM_STRATEGY_STRATEGY_VERSION, else the strategy's own."""
        return self.cfg.strategy_version or label(self.strategy)

    @property
    def gates(self) -> EntryGates:
        """The market-state refusals the operator set (designations, VI)."""
        c = self.cfg
        return EntryGates.of(blocked_designations=c.blocked_designations, blocked_warn_codes=c.blocked_warn_codes,
                             block_liquidation_trading=c.block_liquidation_trading, vi_near_pct=c.vi_near_pct)

    def limits(self, p: StrategyParams) -> RiskLimits:
        return RiskLimits(
            daily_loss_limit=self.cfg.daily_loss_limit,
            capital_limit=self.cfg.capital_limit,
            max_positions=self.cfg.max_positions,
            max_symbol_exposure=self.cfg.max_symbol_exposure,
            stop_loss_pct=p.stop_loss_pct,
        )

    async def params(self, conn: AsyncConnection[Any], on: date | None = None) -> ParamsVersion:
        """The parameters in force on ``on``; seeds a default row when none applies yet.

        A row the strategy's parameter model refuses stops the service (``SettingsError``, one line
        naming the row and the parameter): trading on parameters nobody meant is worse than not.
        """
        d = on or self.today()
        cached = self._params.get(d)
        if cached is not None:
            return cached
        sv = self.strategy_version
        model = self.strategy.Params
        row = await (await conn.execute(Q["params_for_date"], {"strategy_version": sv, "trade_date": d})).fetchone()
        if row is None:
            version = f"{sv}@{d.isoformat()}"
            await conn.execute(Q["insert_params"], {
                "params_version": version, "effective_date": d, "strategy_version": sv,
                "params": Jsonb(model().as_json()), "note": "default parameters seeded by strategy"})
            row = await (await conn.execute(Q["params_for_date"],
                                            {"strategy_version": sv, "trade_date": d})).fetchone()
            logger.info("strategy params: seeded default {} for {}", version, d)
        assert row is not None
        try:
            params = model.model_validate(row["params"])
        except ValidationError as e:
            raise SettingsError(f"strategy parameters {row['params_version']} (trade.strategy_params) are invalid "
                                f"for {label(self.strategy)}: {one_line(e)}") from None
        pv = ParamsVersion(str(row["params_version"]), str(row["strategy_version"]), params)
        self._params[d] = pv
        return pv


async def trading_state(conn: AsyncConnection[Any]) -> tuple[str, str | None]:
    row = await (await conn.execute(Q["trading_state"])).fetchone()
    if row is None:
        return "HALTED", "no trading_state row"
    return str(row["state"]), row["reason"]


async def pace(rt: Runtime, clock_seconds: float) -> None:
    """Wait ``clock_seconds`` of market time, but never less than the wall floor, unless stopping.

    A simulator running 60x would otherwise turn a 2-second poll into a busy loop.
    """
    speed = rt.clock.speed or 1.0
    wall = max(clock_seconds / speed, rt.cfg.min_wall_interval_s)
    try:
        await asyncio.wait_for(rt.stopping.wait(), wall)
    except TimeoutError:
        return


def monotonic() -> float:
    return _time.monotonic()
