"""The symbol master: what is listed, its base price (prior close), daily limits and halts.

Sources, by mode:

* ``sim``: the simulator's ``GET /sim/symbols``.  The agreed shape is
  ``{"symbols": [{"symbol", "name", "market", "base_price", "prev_high", "prev_low", "halted"}]}``,
  with designations as inquire-price names them (``iscd_stat_cls_code``, ``mrkt_warn_cls_code``,
  ``sltr_yn``) where the simulator gives them; the simulator's earlier list shape
  (``code``/``prior_close``) is read too.
* ``paper``/``live``: KIS's master files ``kospi_code.mst`` / ``kosdaq_code.mst`` (zipped, cp949,
  fixed width; ``SM_PRICESYNC_MASTER_URLS``), read by ``stock_manager.shared.kis.master``, whose
  layout is tested on real files of 2026-07.  The simulator serves files of the same format made
  from its own universe (``GET /sim/master/kospi_code.mst.zip``), so paper mode against it has a
  master too.
* Either way, when the master cannot be had, ``inquire-price`` answers for the symbols that are
  actually watched (``from_quote``).

Daily limits are derived here with ``stock_manager.shared.market_rules.price_limits`` from the base price.
Designations (``stock_manager.shared.market_status``) come from the master's flags and, during the
day, from every ``inquire-price`` answer, which is the newer word.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from stock_manager.shared.kis.master import MasterRecord, MstLayout, parse_line, read_master
from stock_manager.shared.kis.models import Quote
from stock_manager.shared.market_rules import Market, price_limits
from stock_manager.shared.market_status import HALTED_DESIGNATION, designation_of, warn_code_of

from .planner import SYMBOL_RE


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    symbol: str
    name: str
    market: Market
    base_price: int | None
    prev_high: int | None = None
    prev_low: int | None = None
    halted: bool = False
    designation: str | None = None  # iscd_stat_cls_code when it is a designation (51..59)
    warn_code: str | None = None  # mrkt_warn_cls_code, 00..03
    liquidation_trading: bool = False  # 정리매매
    # the prior day's traded value (KRW), where the master gives it: paper's stand-in for the volume ranking
    prior_value: int | None = None
    prev_volume: int | None = None  # the prior day's volume (전일거래량), where the source gives it

    @property
    def status(self) -> tuple[bool, str | None, str | None, bool]:
        """What a quote can change during the day: (halted, designation, warn_code, liquidation_trading)."""
        return self.halted, self.designation, self.warn_code, self.liquidation_trading

    @property
    def limits(self) -> tuple[int | None, int | None]:
        """(lower, upper) daily limits, when the base price is known."""
        if not self.base_price or self.base_price <= 0:
            return None, None
        return price_limits(self.base_price, self.market)


def market_of(text: str) -> Market:
    """KIS writes market names several ways (``KOSPI200``, ``KSQ150``, ``코스닥``)."""
    upper = text.strip().upper()
    if "KOSDAQ" in upper or "KSQ" in upper or "코스닥" in text:
        return Market.KOSDAQ
    if "KONEX" in upper or "코넥스" in text:
        return Market.KONEX
    if "ETF" in upper or "ETN" in upper:
        return Market.ETF
    return Market.KOSPI


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip().replace(",", "") or "0")
    except ValueError:
        return None
    return number if number > 0 else None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().upper() in ("Y", "TRUE", "1")


def parse_sim_symbols(body: Any) -> list[SymbolInfo]:
    """``GET /sim/symbols`` in the agreed shape, or the simulator's earlier bare list."""
    rows: Any = body.get("symbols") if isinstance(body, Mapping) else body
    if not isinstance(rows, list):
        raise ValueError("/sim/symbols: expected {'symbols': [...]} or a list")
    out: list[SymbolInfo] = []
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        code = str(row.get("symbol") or row.get("code") or "").strip()
        if not SYMBOL_RE.match(code):
            continue
        base = row.get("base_price", row.get("prior_close"))
        designation = designation_of(str(row.get("iscd_stat_cls_code", row.get("designation")) or ""))
        out.append(
            SymbolInfo(
                symbol=code,
                name=str(row.get("name") or code).strip() or code,
                market=market_of(str(row.get("market") or "")),
                base_price=_int_or_none(base),
                prev_high=_int_or_none(row.get("prev_high", row.get("prior_high"))),
                prev_low=_int_or_none(row.get("prev_low", row.get("prior_low"))),
                prev_volume=_int_or_none(row.get("prev_volume", row.get("prior_volume"))),
                halted=_bool(row.get("halted", False)) or designation == HALTED_DESIGNATION,
                designation=designation,
                warn_code=warn_code_of(str(row.get("mrkt_warn_cls_code", row.get("warn_code")) or "")),
                liquidation_trading=_bool(row.get("sltr_yn", row.get("liquidation_trading", False))),
            )
        )
    return out


# --- KIS master files ---------------------------------------------------------------------------

# Security groups (그룹코드) kept: shares, ETFs/ETNs, REITs, funds, DRs, foreign shares.
_ETF_GROUPS: Final = frozenset({"EF", "EN"})
_SKIP_GROUPS: Final = frozenset({"EW"})  # ELWs: not traded by this system, and thousands of them


def info_from_record(record: MasterRecord) -> SymbolInfo | None:
    """A master-file record as a symbol, or None for one this system does not trade."""
    if not SYMBOL_RE.match(record.code) or record.group in _SKIP_GROUPS:
        return None
    base = record.base_price
    return SymbolInfo(
        symbol=record.code,
        name=record.name or record.code,
        market=Market.ETF if record.group in _ETF_GROUPS else record.market,
        base_price=base if base > 0 else None,
        halted=record.halted,
        designation="51" if record.administrative else None,
        warn_code=warn_code_of(record.market_warning),
        liquidation_trading=record.liquidation,
        prior_value=record.prior_volume * base if record.prior_volume and base else None,
        prev_volume=record.prior_volume or None,
    )


def parse_mst_line(line: str, layout: MstLayout) -> SymbolInfo | None:
    record = parse_line(line, layout)
    return info_from_record(record) if record is not None else None


def read_master_download(content: bytes, url: str) -> list[SymbolInfo]:
    """A downloaded ``*.mst.zip`` (or a bare ``.mst``), decoded as cp949."""
    return [i for r in read_master(content, url) if (i := info_from_record(r)) is not None]


def most_traded(infos: Iterable[SymbolInfo], n: int) -> list[SymbolInfo]:
    """The ``n`` symbols with the largest prior day's traded value that trade today (not halted).

    Where KIS's volume ranking is not offered (paper), the master's 전일거래량 × 기준가 stands in for it.
    """
    traded = [i for i in infos if i.prior_value and not i.halted]
    return sorted(traded, key=lambda i: (-(i.prior_value or 0), i.symbol))[:n]


def from_quote(symbol: str, quote: Quote) -> SymbolInfo:
    """The fallback: what inquire-price tells about a symbol (it has no name, so the code stands in)."""
    return SymbolInfo(
        symbol=symbol,
        name=symbol,
        market=market_of(quote.market_name),
        base_price=quote.base_price if quote.base_price > 0 else None,
        **quote_status(quote),
    )


def quote_status(quote: Quote) -> dict[str, Any]:
    """What an inquire-price answer says of halts and designations, as SymbolInfo's fields."""
    designation = designation_of(quote.status_code)
    return {"halted": quote.halted or designation == HALTED_DESIGNATION, "designation": designation,
            "warn_code": warn_code_of(quote.mrkt_warn_cls_code), "liquidation_trading": quote.liquidation_trading}


def upsert_params(infos: Iterable[SymbolInfo], trade_date: Any) -> dict[str, Any]:
    """Column arrays for ``upsert_symbols`` and ``record_symbol_days`` (one statement for the whole master)."""
    rows = list({i.symbol: i for i in infos}.values())
    limits = [i.limits for i in rows]
    return {
        "symbol": [i.symbol for i in rows],
        "name": [i.name for i in rows],
        "market": [i.market.value for i in rows],
        "base_price": [i.base_price for i in rows],
        "upper_limit": [u for _, u in limits],
        "lower_limit": [lo for lo, _ in limits],
        "prev_high": [i.prev_high for i in rows],
        "prev_low": [i.prev_low for i in rows],
        "prev_volume": [i.prev_volume for i in rows],
        "halted": [i.halted for i in rows],
        "designation": [i.designation for i in rows],
        "warn_code": [i.warn_code for i in rows],
        "liquidation_trading": [i.liquidation_trading for i in rows],
        "trade_date": trade_date,
    }
