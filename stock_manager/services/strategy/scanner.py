"""The scanner: the whole universe in one SQL statement, the strategy's filters and signal, candidates stored.

One scanner per process serves all its workers (N workers scanning the same universe N times would
only multiply the load).  A failed read (a timeout, a dropped connection) is retried with
exponential backoff up to three times; after that the scan is skipped and the workers stay in SCAN
until the next one (EC-001).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from loguru import logger
from psycopg.types.json import Jsonb

from stock_manager.services.strategy import ops
from stock_manager.services.strategy.port import Candle, EntrySignal, MarketSnapshot, StrategyParams
from stock_manager.services.strategy.queries import Q
from stock_manager.services.strategy.rules.scan import ScanOutcome, run_scan, to_store
from stock_manager.services.strategy.runtime import Runtime
from stock_manager.shared.market_status import ViState

RETRYABLE: tuple[type[BaseException], ...] = (TimeoutError, psycopg.OperationalError, psycopg.errors.QueryCanceled)
# the CandidateScanned event names at most this many symbols the market's state refused (a VI, a
# designation); the counts of every reason are in its ``excluded``
REFUSED_LISTED = 100


class ScanError(Exception):
    """The universe could not be read even after retries."""


@dataclass
class ScanResult:
    scan_id: uuid.UUID
    at: datetime
    params_version: str
    outcome: ScanOutcome
    signals: list[EntrySignal]
    rows: dict[str, MarketSnapshot] = field(default_factory=dict)
    elapsed_ms: float = 0.0


async def retry(fn: Callable[[], Awaitable[Any]], *, what: str, attempts: int = 3, base_delay_s: float = 0.2) -> Any:
    """Run ``fn``; on a retryable error log it (ERROR) and try again after 1x, 2x, 4x the base delay."""
    last: BaseException | None = None
    for attempt in range(1, attempts + 2):
        try:
            return await fn()
        except RETRYABLE as e:
            last = e
            if attempt > attempts:
                break
            delay = base_delay_s * 2 ** (attempt - 1)
            logger.error("{} failed ({}: {}); retry {}/{} in {:.2f}s", what, type(e).__name__, str(e)[:200] or "-",
                         attempt, attempts, delay)
            await asyncio.sleep(delay)
    logger.error("{} failed after {} retries ({}); waiting for the next poll", what, attempts, type(last).__name__)
    raise ScanError(what) from last


def snapshot_of(r: dict[str, Any]) -> MarketSnapshot:
    """A row of the snapshots query as the frozen values a strategy is given."""
    ts = r["c_ts"] or []
    candles = tuple(Candle(ts[k], r["c_open"][k], r["c_high"][k], r["c_low"][k], r["c_close"][k],
                           int(r["c_volume"][k]), r["c_turnover"][k]) for k in range(len(ts)))
    return MarketSnapshot(
        symbol=r["symbol"], market=r["market"] or "KOSPI", price=r["price"], bid=r["bid"], ask=r["ask"],
        volume=r["volume"], turnover=r["turnover"], change_pct=r["change_pct"],
        base_price=Decimal(r["base_price"]) if r["base_price"] is not None else None,
        upper_limit=Decimal(r["upper_limit"]) if r["upper_limit"] is not None else None,
        halted=bool(r["halted"]), stale=bool(r["stale_flag"]), ts=r["ts"], candles=candles, open=r["open"],
        vi=ViState(r["vi"]).value if r["vi"] is not None else ViState.NONE.value,
        vi_reference=Decimal(r["vi_reference"]) if r["vi_reference"] is not None else None,
        vi_since=r["vi_since"], designation=r["designation"], warn_code=r["warn_code"],
        liquidation_trading=bool(r["liquidation_trading"]))


def snapshot_args(rt: Runtime, now: datetime, p: StrategyParams) -> dict[str, Any]:
    return {"now": now, "since": now - timedelta(minutes=p.lookback_min), "depth": max(1, rt.strategy.bars(p))}


class Scanner:
    def __init__(self, rt: Runtime, *,
                 fetch: Callable[[datetime, StrategyParams], Awaitable[list[MarketSnapshot]]] | None = None,
                 retry_delay_s: float = 0.2) -> None:
        self.rt = rt
        self.latest: ScanResult | None = None
        self._fetch = fetch or self.fetch_rows
        self._retry_delay_s = retry_delay_s

    async def fetch_rows(self, now: datetime, p: StrategyParams) -> list[MarketSnapshot]:
        async with self.rt.pool.connection() as conn:
            cur = await conn.execute(Q["snapshots"], {"symbol": None, **snapshot_args(self.rt, now, p)})
            return [snapshot_of(r) for r in await cur.fetchall()]

    async def run_once(self) -> ScanResult:
        """One poll: read, filter, evaluate, store candidates, record CandidateScanned."""
        t0 = time.perf_counter()
        now = self.rt.now()
        async with self.rt.pool.connection() as conn:
            pv = await self.rt.params(conn)
        logger.info("scan poll started (params {})", pv.version)
        rows: list[MarketSnapshot] = await retry(lambda: self._fetch(now, pv.params), what="universe read",
                                          base_delay_s=self._retry_delay_s)
        outcome = run_scan(self.rt.strategy, rows, pv.params, now, self.rt.gates)
        keep = to_store(outcome, self.rt.cfg.scan_store_limit)
        scan_id = uuid.uuid4()
        by_symbol = {r.symbol: r for r in rows}
        async with self.rt.pool.connection() as conn:
            async with conn.cursor() as cur:
                await cur.executemany(Q["insert_candidate"], [
                    {"scan_id": scan_id, "symbol": e.symbol, "signal": e.signal, "score": e.score,
                     "price": by_symbol[e.symbol].price, "inputs": Jsonb(e.inputs),
                     "filters": Jsonb({"passed": e.passed, "rejected_by": list(e.rejected_by)}),
                     "params_version": pv.version, "market_ts": now}
                    for e in keep])
            signals = sorted((e for e in outcome.evaluations if e.signal), key=lambda e: e.score, reverse=True)
            elapsed = (time.perf_counter() - t0) * 1000
            await ops.emit(conn, "CandidateScanned",
                           f"scan {scan_id}: {outcome.universe} symbols, {outcome.passed} passed filters, "
                           f"{outcome.signals} signals ({elapsed:.0f} ms)",
                           market_ts=now, scan_id=scan_id, universe=outcome.universe, passed=outcome.passed,
                           signals=outcome.signals, excluded=outcome.excluded,
                           refused={s: list(why) for s, why in list(outcome.refused.items())[:REFUSED_LISTED]},
                           stored=len(keep),
                           top=[e.symbol for e in signals[:10]], elapsed_ms=round(elapsed, 1),
                           params_version=pv.version, strategy_version=pv.strategy_version)
        logger.info("scan filters: excluded {}; candidates {}", outcome.excluded, [e.symbol for e in signals[:10]])
        if outcome.refused:
            logger.debug("scan: entries refused by the market's state: {}", dict(outcome.refused))
        self.latest = ScanResult(scan_id, now, pv.version, outcome, signals, by_symbol, elapsed)
        return self.latest
