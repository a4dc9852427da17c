"""``stock-manager report`` on a seeded day, read as sm_readonly from a real PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import datetime
from html import unescape
from pathlib import Path

import pytest

from stock_manager.report.build import generate, latest_day
from stock_manager.shared.clock import KST, ManualClock
from stock_manager.shared.db.pool import connect
from tests.ops.png import decode
from tests.ops.seed import TRADE_DATE
from tests.report import seed
from tests.support.pg import TestDb
from tests.support.sim import clean_env

WALL = ManualClock(datetime(2026, 11, 23, 19, 5, tzinfo=KST))


def _text(html: str) -> str:
    """The page's words without tags, whitespace folded: what a reader sees."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


async def test_the_day_as_a_page_with_its_charts(report_db: TestDb, tmp_path: Path) -> None:
    async with await connect(report_db.url("readonly")) as conn:
        assert await latest_day(conn) == TRADE_DATE
        index = await generate(conn, TRADE_DATE, tmp_path / "day", WALL)
    assert index == tmp_path / "day" / "index.html"
    files = sorted(p.name for p in index.parent.iterdir())
    assert files == ["equity.png", "index.html", "trip-01.png", "trip-02.png"]
    for name in files[:1] + files[2:]:
        img = decode((index.parent / name).read_bytes())
        assert img.width >= 700 and len(img.colours(step=8)) > 20, name
    html = index.read_text(encoding="utf-8")
    assert re.findall(r'<img[^>]* src="([^"]+)"', html) == ["equity.png", "trip-01.png", "trip-02.png"]
    assert "://" not in html.replace("http://www.w3.org", "")  # nothing fetched from elsewhere
    text = _text(html)
    # the summary's figures, profit factor and drawdown among them
    assert "realized PnL (after fees and tax) +15,312" in text
    assert "round trips 2 (1W / 1L)" in text and "win rate 50.0 %" in text
    assert re.search(r'id="profit-factor">2\.29<', html) and re.search(r'id="max-drawdown">11,910<', html)
    # fees and tax of every fill of the day
    assert re.search(r'id="fees-total">1,121<', html) and re.search(r'id="taxes-total">5,496<', html)
    # the trades in closing order, each with why it entered and why it left
    rows = re.findall(r'<tr class="trip" id="trade-(\d)" data-symbol="(\d+)">(.*?)</tr>', html, re.S)
    assert [(n, s) for n, s, _ in rows] == [("1", "000660"), ("2", "035720")]
    first, second = (_text(r) for _, _, r in rows)
    assert "SK하이닉스" in first and "09:10:00" in first and "10:30:00" in first and "+27,222" in first
    assert "SIGNAL_BREAKOUT score 1.8500" in first and "passed the universe filter" in first
    assert "breakout_pct=0.81" in first and "trend_pct=1.04" in first and "scan_id" not in first
    assert "TAKE_PROFIT 10 @ 121,000" in first and "take_profit_pct=2.5" in first
    assert "카카오" in second and "-11,910" in second and "STOP_LOSS 20 @ 41,500" in second
    assert f"decided under {seed.STRATEGY_VERSION}, parameters {seed.PARAMS_VERSION}" in second
    # the tuning notes Strategy wrote, and the parameters in force
    assert "By exit rule" in text and "STOP_LOSS 1 0 -11,910" in text and "TAKE_PROFIT 1 1 +27,222" in text
    assert "more losers than winners" not in text and "Signal inputs, winners against losers" in text
    assert "breakout_pct 0.8100 0.3500" in text
    assert seed.PARAMS_VERSION in text and '"take_profit_pct": 2.5' in text
    assert "generated 2026-11-23 19:05:00 KST (wall clock)" in text
    assert "not charted" not in text


async def test_charts_stop_at_the_cap_and_say_how_many_are_left(db: TestDb, tmp_path: Path) -> None:
    seed.seed_many_trips(db.admin_url, 34)
    started = time.perf_counter()
    async with await connect(db.url("readonly")) as conn:
        assert await latest_day(conn) == seed.MANY_DATE
        index = await generate(conn, seed.MANY_DATE, tmp_path, WALL)
    elapsed = time.perf_counter() - started
    charts = sorted(p.name for p in tmp_path.glob("trip-*.png"))
    assert len(charts) == 30 and charts[-1] == "trip-30.png"
    text = _text(index.read_text(encoding="utf-8"))
    assert "4 more round trips are not charted (the report draws the first 30)" in text
    assert "no daily summary stored yet" in text and "round trips 34 (" in text
    # fewer trips next time: the old charts go
    async with await connect(db.url("readonly")) as conn:
        await generate(conn, seed.MANY_DATE, tmp_path, WALL, max_charts=2)
    assert sorted(p.name for p in tmp_path.glob("trip-*.png")) == ["trip-01.png", "trip-02.png"]
    print(f"34 round trips, 30 charts: {elapsed:.2f} s")


@pytest.mark.parametrize("given", [True, False])
def test_the_command_as_sm_readonly(report_db: TestDb, tmp_path: Path, given: bool) -> None:
    out = tmp_path / "out"
    args = ["--date", TRADE_DATE.isoformat(), "--out", str(out)] if given else []
    proc = subprocess.run([sys.executable, "-m", "stock_manager", "report", *args],
                          env=clean_env(DATABASE_URL=report_db.admin_url, SM_DATA_DIR=str(tmp_path / "data")),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    where = out if given else tmp_path / "data" / "reports" / TRADE_DATE.isoformat()
    assert f"report for {TRADE_DATE}: {where / 'index.html'}" in proc.stdout
    assert (where / "trip-02.png").exists() and "카카오" in (where / "index.html").read_text(encoding="utf-8")


def test_no_fills_no_report(db: TestDb, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "stock_manager", "report"],
                          env=clean_env(DATABASE_URL=db.admin_url, SM_DATA_DIR=str(tmp_path)),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1 and "no fills in the database" in proc.stderr and not proc.stdout
