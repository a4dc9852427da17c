"""The command line of ``stock-manager report``."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from stock_manager.shared.clock import SystemClock
from stock_manager.shared.db.pool import connect


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                   help="the trading day (default: the latest day with fills)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="where index.html and its PNGs go (default: SM_DATA_DIR/reports/DATE)")


async def run(args: argparse.Namespace, readonly_url: str, data_dir: Path) -> int:
    from stock_manager.report.build import generate, latest_day  # matplotlib, for this command only
    from stock_manager.report.charts import cjk_font

    started = time.perf_counter()
    async with await connect(readonly_url) as conn:
        d: date | None = args.date or await latest_day(conn)
        if d is None:
            print("stock-manager report: no fills in the database, so no day to report; give --date", file=sys.stderr)
            return 1
        out: Path = args.out or data_dir / "reports" / d.isoformat()
        index = await generate(conn, d, out, SystemClock())
    if cjk_font() is None:
        print("stock-manager report: no CJK font found: Korean names in the charts show as boxes "
              "(install fonts-noto-cjk, or Malgun Gothic / AppleGothic)", file=sys.stderr)
    print(f"report for {d}: {index} ({time.perf_counter() - started:.1f} s)")
    return 0
