"""Builders for the records PriceSync consumes (as the KIS adapter hands them over)."""

from __future__ import annotations

from datetime import datetime

from stock_manager.shared.clock import kst
from stock_manager.shared.kis.models import Quote, parse_quote
from stock_manager.shared.kis.ws_frames import Trade, parse_trade


def trade_fields(symbol: str, at: datetime, price: int, qty: int, cum: int, *, base: int | None = None) -> list[str]:
    """A 46-field H0STCNT0 record."""
    local = kst(at)
    base = base if base is not None else price - 100
    return [
        symbol, local.strftime("%H%M%S"), str(price), "2", str(price - base), f"{(price - base) / base * 100:.2f}",
        f"{price:.2f}", str(base), str(price + 50), str(base - 50), str(price + 10), str(price), str(qty), str(cum),
        str(cum * price), "1", "2", "1", "101.20", str(cum // 2), str(cum - cum // 2), "1", "50.00", "80.10",
        "090000", "2", "100", "091500", "5", "-50", "090100", "2", "150", local.strftime("%Y%m%d"), "20", "N",
        "1200", "1500", "50000", "60000", "0.05", "1000000", "90.00", "0", "", str(base),
    ]


def trade(symbol: str, at: datetime, price: int, qty: int = 1, cum: int = 1000) -> Trade:
    return parse_trade(trade_fields(symbol, at, price, qty, cum))


def quote(symbol: str, price: int, acml_vol: int, *, base: int = 10_000, halted: bool = False) -> Quote:
    return parse_quote(
        {
            "output": {
                "stck_shrn_iscd": symbol,
                "stck_prpr": str(price),
                "prdy_vrss": str(price - base),
                "prdy_vrss_sign": "2",
                "prdy_ctrt": f"{(price - base) / base * 100:.2f}",
                "stck_oprc": str(base),
                "stck_hgpr": str(max(price, base)),
                "stck_lwpr": str(min(price, base)),
                "stck_mxpr": str(base * 13 // 10),
                "stck_llam": str(base * 7 // 10),
                "stck_sdpr": str(base),
                "acml_vol": str(acml_vol),
                "acml_tr_pbmn": str(acml_vol * price),
                "temp_stop_yn": "Y" if halted else "N",
                "rprs_mrkt_kor_name": "KOSPI",
            }
        },
        symbol,
    )
