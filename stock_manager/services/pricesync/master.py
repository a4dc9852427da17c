"""Loads the symbol master into ``market.symbols`` and keeps the in-memory view of it.

When recording (``SM_PRICESYNC_RECORD``), the same statement's transaction also keeps the day's
master in ``market.symbol_days``, and each designation a quote changes in
``market.designation_history``: what a replay of the day starts from and what changed during it.

A master that cannot be had is not fatal: prices matter more than names.  PriceSync then learns
the symbols it actually watches from ``inquire-price`` (``note_quote``) and says so in the log
and in ``ops.events``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from typing import Any

import httpx
import psycopg
from loguru import logger

from stock_manager.shared.clock import Clock, kst
from stock_manager.shared.db.pool import Pool
from stock_manager.shared.kis.models import Quote
from stock_manager.shared.market_rules import Market

from .queries import Q
from .report import Reporter
from .symbols import (
    SymbolInfo,
    from_quote,
    most_traded,
    parse_sim_symbols,
    quote_status,
    read_master_download,
    upsert_params,
)

# how many of the prior day's most traded names the master keeps ranked (PriceSync streams up to 30)
MOST_TRADED_KEPT = 30


async def fetch_sim_symbols(rest_url: str, *, http_timeout_s: float = 10.0) -> list[SymbolInfo]:
    async with httpx.AsyncClient(timeout=http_timeout_s) as client:
        resp = await client.get(rest_url.rstrip("/") + "/sim/symbols")
        resp.raise_for_status()
        return parse_sim_symbols(resp.json())


async def fetch_master_files(urls: Iterable[str], *, http_timeout_s: float = 30.0) -> list[SymbolInfo]:
    out: list[SymbolInfo] = []
    async with httpx.AsyncClient(timeout=http_timeout_s, follow_redirects=True) as client:
        for url in urls:
            resp = await client.get(url)
            resp.raise_for_status()
            out.extend(read_master_download(resp.content, url))
    return out


class SymbolMaster:
    def __init__(self, pool: Pool, clock: Clock, report: Reporter, *, record_as: str | None = None) -> None:
        """``record_as``: the mode (``paper``, ``live``, ``sim``) to record the day under; None: no recording."""
        self._pool = pool
        self._record_as = record_as
        self._clock = clock
        self._report = report
        self.known: dict[str, SymbolInfo] = {}
        self.complete = False  # a whole master was loaded (else symbols are learnt from quotes)
        # the prior day's most traded names by the master's figures, most first (empty when it has none)
        self.most_traded: list[str] = []

    def prev_range(self) -> dict[str, tuple[int | None, int | None]]:
        return {s: (i.prev_high, i.prev_low) for s, i in self.known.items()}

    def _today(self) -> date:
        return kst(self._clock.now()).date()

    async def load(self, fetch: Any, source: str) -> bool:
        """Fetch the whole master with ``fetch()`` and store it; False (logged) when unavailable."""
        try:
            infos: list[SymbolInfo] = await fetch()
        except (httpx.HTTPError, ValueError, OSError) as exc:
            detail = f"{type(exc).__name__}: {exc}"[:300]
            logger.warning("symbol master from {} unavailable ({}); learning watched symbols from inquire-price",
                           source, detail)
            self._report.post("SymbolMasterUnavailable", f"{source}: {detail}", level="WARN", source=source)
            await self.refresh()
            return False
        if not infos:
            logger.warning("symbol master from {} is empty; learning watched symbols from inquire-price", source)
            await self.refresh()
            return False
        params = upsert_params(infos, self._today())
        async with self._pool.connection() as conn:
            await conn.execute(Q["upsert_symbols"], params)
            await conn.execute(Q["delist_missing"], {"symbol": params["symbol"]})
            if self._record_as is not None:
                await conn.execute(Q["record_symbol_days"], {**params, "source": self._record_as})
        self.complete = True
        self.most_traded = [i.symbol for i in most_traded(infos, MOST_TRADED_KEPT)]
        await self.refresh()
        halted = sum(1 for i in infos if i.halted)
        designated = sum(1 for i in infos if i.designation or i.liquidation_trading)
        logger.info("symbol master: {} symbols from {} ({} halted, {} designated)", len(infos), source, halted,
                    designated)
        self._report.post("SymbolMasterLoaded", f"{len(infos)} symbols from {source}", symbols=len(infos),
                          halted=halted, designated=designated, source=source)
        return True

    async def refresh(self) -> None:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(Q["known_symbols"])).fetchall()
        self.known = {
            r["symbol"]: SymbolInfo(r["symbol"], r["name"], Market(r["market"]), r["base_price"], r["prev_high"],
                                    r["prev_low"], r["halted"], r["designation"], r["warn_code"],
                                    r["liquidation_trading"])
            for r in rows
        }

    def changed(self, symbol: str, quote: Quote) -> bool:
        """Whether ``quote`` says something of ``symbol`` that ``market.symbols`` does not hold yet."""
        known = self.known.get(symbol)
        if known is None:
            return True
        status = quote_status(quote)
        return known.status != (status["halted"], status["designation"], status["warn_code"],
                                status["liquidation_trading"])

    async def note_quote(self, symbol: str, quote: Quote) -> None:
        """Learn an unknown symbol from its quote; follow a halt or a designation that changed during the day."""
        known = self.known.get(symbol)
        try:
            if known is None:
                info = from_quote(symbol, quote)
                params = upsert_params([info], self._today())
                async with self._pool.connection() as conn:
                    await conn.execute(Q["upsert_symbols"], params)
                    if self._record_as is not None:
                        await conn.execute(Q["record_symbol_days"], {**params, "source": self._record_as})
                self.known[symbol] = info
                return
            status = quote_status(quote)
            info = replace(known, **status)
            if info.status == known.status:
                return
            async with self._pool.connection() as conn:
                await conn.execute(Q["set_status"], {"symbol": symbol, **status})
                if self._record_as is not None and known.status[1:] != info.status[1:]:
                    await conn.execute(Q["record_designation"], {"symbol": symbol, "ts": self._clock.now(), **status})
            self.known[symbol] = info
            if known.halted != info.halted:
                self._report.post("SymbolHalted" if info.halted else "SymbolResumed", symbol, symbol=symbol)
            if known.status[1:] != info.status[1:]:
                self._report.post("SymbolDesignationChanged",
                                  f"{symbol}: designation {info.designation or '-'}, warning {info.warn_code or '-'}"
                                  f"{', 정리매매' if info.liquidation_trading else ''}", symbol=symbol,
                                  designation=info.designation, warn_code=info.warn_code,
                                  liquidation_trading=info.liquidation_trading,
                                  before={"designation": known.designation, "warn_code": known.warn_code,
                                          "liquidation_trading": known.liquidation_trading})
        except psycopg.Error as exc:
            logger.warning("symbol {} not recorded: {}", symbol, type(exc).__name__)
