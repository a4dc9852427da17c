"""The report's HTML: one Jinja2 template, autoescaped (symbol names, reasons and notes are data).

The page has no script and no external resource but its own PNGs, referenced relatively, so the
folder opens from disk, from a copy, or from the dashboard (whose CSP allows inline styles on this
page only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from stock_manager.report.model import Day, Trip
from stock_manager.shared.clock import KST
from stock_manager.shared.resources import package_path

# the notes the page lays out itself; any other key is shown as it is stored
KNOWN_NOTES = ("suggestions", "by_exit_reason", "signal_inputs", "thin_liquidity", "forced_exits", "unfilled",
               "liquidation")


@dataclass(frozen=True)
class Chart:
    n: int
    trip: Trip
    file: str


def _number(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def won(v: Any, sign: bool = True) -> str:
    x = _number(v)
    if x is None:
        return "-"
    return f"{x:+,.0f}" if sign and x else f"{x:,.0f}"


def price(v: Any) -> str:
    x = _number(v)
    return "-" if x is None else f"{x:,.2f}".rstrip("0").rstrip(".")


def ratio(v: Any, digits: int = 2) -> str:
    x = _number(v)
    return "-" if x is None else f"{x:.{digits}f}"


def percent(v: Any) -> str:
    x = _number(v)
    return "-" if x is None else f"{x * 100:.1f} %"


def kst(v: datetime | None, fmt: str = "%H:%M:%S") -> str:
    return "-" if v is None else v.astimezone(KST).strftime(fmt)


def sign_class(v: Any) -> str:
    x = _number(v)
    return "" if not x else "up" if x > 0 else "down"


def inputs(d: Mapping[str, Any] | None) -> str:
    """A decision's inputs on one line: ``breakout_pct=1.2 · trend_pct=0.4``."""
    return " · ".join(f"{k}={_short(v)}" for k, v in (d or {}).items())


def _short(v: Any) -> str:
    """Numbers as a trader writes them (118,000, 0.8123), whether the context stored them as text or not."""
    if isinstance(v, str):
        try:
            n = Decimal(v)
        except ArithmeticError:
            return v
        return _short(n) if n.is_finite() else v
    if isinstance(v, float | Decimal):
        x = float(v)
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"
    return json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, dict | list) else str(v)


def pretty(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, indent=2, default=str)


ENV = Environment(loader=FileSystemLoader(package_path(__package__, "templates")), autoescape=True,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(won=won, price=price, ratio=ratio, percent=percent, kst=kst, sign=sign_class, inputs=inputs,
                   pretty=pretty)


def render(day: Day, charts: Sequence[Chart], *, equity_file: str, cjk_font: str | None) -> str:
    notes = dict(day.figures.notes)
    numbers = {t.trip_id: n for n, t in enumerate(day.trips, 1)}
    return ENV.get_template("report.html").render(
        day=day, f=day.figures, charts=charts, numbers=numbers, equity_file=equity_file, cjk_font=cjk_font,
        notes=notes, other_notes={k: v for k, v in notes.items() if k not in KNOWN_NOTES},
        strategies=sorted({t.strategy_version for t in day.trips if t.strategy_version}))
