"""The report's PNGs, drawn with matplotlib's object API on the Agg canvas.

No pyplot: its global figure registry is neither needed nor safe beside the dashboard's event loop,
and a ``Figure`` with an Agg canvas is all a PNG needs.  Colours follow the Korean convention the
dashboard uses (gains and rises red, losses and falls blue).  Korean names need a CJK font:
``font_family`` keeps the installed ones of a preference list, so matplotlib never logs a "font not
found" line per missing family, and ``cjk_font`` says whether any was found.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.dates as mdates
from matplotlib import font_manager, rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from stock_manager.report.model import Candle, Point, Trip
from stock_manager.shared.clock import KST

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

PREFERRED_FONTS = ("Noto Sans CJK KR", "Noto Sans KR", "NanumGothic", "Malgun Gothic", "AppleGothic",
                   "Apple SD Gothic Neo", "DejaVu Sans")
CJK_FONTS = frozenset(PREFERRED_FONTS) - {"DejaVu Sans"}
UP, DOWN, INK, MUTED, GRID = "#d9363e", "#2f6fdb", "#1f2430", "#6b7385", "#e3e6ec"
DPI = 100
MINUTE = 1 / (24 * 60)  # matplotlib's date unit is the day
LABEL_BOX = {"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
# fixed margins, room for "+1,234,567" on the y axis: a constrained layout costs 40 % of a chart's time
MARGINS = {"left": 0.1, "right": 0.985, "top": 0.9, "bottom": 0.1}


@functools.cache
def font_family() -> tuple[str, ...]:
    have = {f.name for f in font_manager.fontManager.ttflist}
    return tuple(f for f in PREFERRED_FONTS if f in have) or ("DejaVu Sans",)


def cjk_font() -> str | None:
    """The CJK font Korean text will be drawn with, or None (it would come out as boxes)."""
    return next((f for f in font_family() if f in CJK_FONTS), None)


def _rc() -> dict[RcKeyType, Any]:
    return {"font.family": "sans-serif", "font.sans-serif": list(font_family()), "font.size": 9,
            "axes.unicode_minus": False, "axes.spines.top": False, "axes.spines.right": False,
            "axes.edgecolor": MUTED, "axes.labelcolor": INK, "xtick.color": MUTED, "ytick.color": MUTED,
            "axes.titlesize": 10, "axes.titleweight": "bold", "axes.titlelocation": "left"}


def _won(v: float, _: object = None) -> str:
    return f"{v:+,.0f}" if v else "0"


def _price(v: float, _: object = None) -> str:
    return f"{v:,.0f}"


def _x(ts: datetime) -> float:
    """A time as matplotlib's date number (its own conversion, typed here once)."""
    return float(mdates.date2num(ts))  # type: ignore[no-untyped-call]


def _time_axis(ax: Axes) -> None:
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=KST, minticks=4, maxticks=9))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=KST))  # type: ignore[no-untyped-call]
    ax.grid(True, color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=DPI, facecolor="white")
    return path


def equity_png(points: Sequence[Point], path: Path, *, until: datetime | None = None) -> Path:
    """The realized equity curve stepped at each close, and below it the drawdown from the peak."""
    with rc_context(_rc()):
        fig = Figure(figsize=(10, 4.8), dpi=DPI)
        FigureCanvasAgg(fig)
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
        fig.subplots_adjust(**MARGINS, hspace=0.3)
        top.set_title("Realized equity (won, after fees and tax), stepped at each round trip's close")
        bottom.set_title("Drawdown from the day's peak (won)")
        if not points:
            for ax in (top, bottom):
                ax.text(0.5, 0.5, "no round trip closed on this day", ha="center", va="center",
                        transform=ax.transAxes, color=MUTED)
                ax.set_xticks([])
                ax.set_yticks([])
            return _save(fig, path)
        xs = [_x(p.ts) for p in points]
        eq = [float(p.equity) for p in points]
        dd = [-float(p.drawdown) for p in points]
        if until is not None and until > points[-1].ts:  # the flat tail to the day's last fill
            xs, eq, dd = [*xs, _x(until)], [*eq, eq[-1]], [*dd, dd[-1]]
        top.step(xs, eq, where="post", color=INK, linewidth=1.6)
        top.axhline(0, color=MUTED, linewidth=0.8)
        steps = points[1:]
        top.scatter([_x(p.ts) for p in steps], [float(p.equity) for p in steps], s=18, zorder=3,
                    c=[UP if b.equity >= a.equity else DOWN for a, b in zip(points, steps, strict=False)])
        top.yaxis.set_major_formatter(FuncFormatter(_won))
        bottom.fill_between(xs, dd, 0, step="post", color=DOWN, alpha=0.35, linewidth=0)
        bottom.step(xs, dd, where="post", color=DOWN, linewidth=1)
        worst = max(points, key=lambda p: p.drawdown)
        if worst.drawdown > 0:
            bottom.annotate(f"max drawdown {float(worst.drawdown):,.0f}", (_x(worst.ts), -float(worst.drawdown)),
                            xytext=(6, 3), textcoords="offset points", va="bottom", color=INK, fontsize=8,
                            bbox=LABEL_BOX)
        bottom.set_ylim(top=max(1.0, -min(dd) * 0.08))
        bottom.yaxis.set_major_formatter(FuncFormatter(_won))
        for ax in (top, bottom):
            _time_axis(ax)
        return _save(fig, path)


def _candles(ax: Axes, candles: Sequence[Candle]) -> None:
    xs = [_x(c.ts) + MINUTE / 2 for c in candles]  # a bar stands for its whole minute
    colours = [UP if c.close >= c.open else DOWN for c in candles]
    ax.vlines(xs, [float(c.low) for c in candles], [float(c.high) for c in candles], colors=colours,
              linewidth=0.8)
    ax.bar(xs, [max(abs(float(c.close - c.open)), float(c.close) * 0.0002) for c in candles], width=MINUTE * 0.7,
           bottom=[float(min(c.open, c.close)) for c in candles], color=colours, linewidth=0)


def trip_png(n: int, trip: Trip, candles: Sequence[Candle], path: Path) -> Path:
    """One round trip on its symbol's 1-minute candles: each buy fill ▲, each sell fill ▼, the hold shaded."""
    with rc_context(_rc()):
        fig = Figure(figsize=(8, 3.4), dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        fig.subplots_adjust(**MARGINS)
        reasons = " + ".join(e.reason for e in trip.exits) or (trip.exit_reason or "?")
        ax.set_title(f"#{n} {trip.label}   {float(trip.pnl):+,.0f} won   exit: {reasons}",
                     color=UP if trip.pnl > 0 else DOWN if trip.pnl < 0 else INK)
        if candles:
            _candles(ax, candles)
        else:
            ax.text(0.5, 0.92, "no 1-minute candles stored for these minutes", ha="center", va="top",
                    transform=ax.transAxes, color=MUTED)
        ax.axvspan(_x(trip.entry_ts), _x(trip.exit_ts), color=INK, alpha=0.06, linewidth=0)
        buys = [f for f in trip.fills if f.side == "BUY"]
        sells = [f for f in trip.fills if f.side == "SELL"]
        ax.scatter([_x(f.ts) for f in buys], [float(f.price) for f in buys], marker="^", s=70, color=UP,
                   edgecolors=INK, linewidths=0.6, zorder=4, label="buy fill (entry)")
        ax.scatter([_x(f.ts) for f in sells], [float(f.price) for f in sells], marker="v", s=70, color=DOWN,
                   edgecolors=INK, linewidths=0.6, zorder=4, label="sell fill (exit)")
        ax.annotate(f"entry {trip.qty} @ {float(trip.avg_entry_price):,.0f}",
                    (_x(trip.entry_ts), float(trip.avg_entry_price)), xytext=(0, -14), textcoords="offset points",
                    ha="center", va="top", fontsize=8, color=UP, bbox=LABEL_BOX, zorder=5)
        lo = min([trip.entry_ts, *(c.ts for c in candles)]) - timedelta(minutes=1)
        hi = max([trip.exit_ts, *(c.ts + timedelta(minutes=1) for c in candles)]) + timedelta(minutes=1)
        for e in trip.exits:  # a label near an edge leans inwards rather than off the chart
            side = (e.ts - lo) / (hi - lo)
            ax.annotate(f"{e.reason} {e.qty} @ {float(e.avg_price):,.0f}", (_x(e.ts), float(e.avg_price)),
                        xytext=(0, 12), textcoords="offset points", va="bottom", fontsize=8, color=DOWN,
                        ha="right" if side > 0.8 else "left" if side < 0.2 else "center", bbox=LABEL_BOX, zorder=5)
        ax.set_xlim(_x(lo), _x(hi))
        ax.use_sticky_edges = False  # bars stick the axis to their bottoms; the labels want room
        ax.margins(x=0, y=0.15)
        ax.yaxis.set_major_formatter(FuncFormatter(_price))
        ax.legend(loc="upper left", fontsize=7, frameon=False)
        _time_axis(ax)
        return _save(fig, path)
