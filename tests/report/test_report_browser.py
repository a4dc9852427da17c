"""The report as a real headless Chromium draws it: every chart loads, the Korean names are drawn by
a CJK font (the dashboard's glyph-width check), and the screenshot is the page, not a blank.  With
CI=true a missing chromium or Korean font fails these tests (tests/ops/browser.py)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from stock_manager.report.build import generate
from stock_manager.shared.clock import KST, ManualClock
from stock_manager.shared.db.pool import connect
from tests.ops.browser import headless
from tests.ops.png import decode
from tests.ops.seed import TRADE_DATE
from tests.report.support import charts_drawn, probe
from tests.support.pg import TestDb


@pytest.fixture
async def report(report_db: TestDb, tmp_path: Path) -> Path:
    async with await connect(report_db.url("readonly")) as conn:
        return await generate(conn, TRADE_DATE, tmp_path / "report", ManualClock(datetime(2026, 11, 23, 19,
                                                                                           tzinfo=KST)))


def test_the_charts_load_and_korean_is_drawn_in_a_cjk_font(chromium_with_cjk: str, report: Path) -> None:
    found = probe(chromium_with_cjk, report.as_uri())
    assert found["images"] == [["equity.png", True, 1000], ["trip-01.png", True, 800], ["trip-02.png", True, 800]]
    assert [n.split(" widths=")[0] for n in found["names"]] == ["boxed=0 text=하이닉스", "boxed=0 text=카카오"], (
        f"Hangul is drawn as boxes ({found['names']}): apt-get install fonts-noto-cjk")


def test_the_screenshot_is_the_report(chromium: str, report: Path, tmp_path: Path) -> None:
    shot = Path(os.environ.get("SM_TEST_SCREENSHOT_DIR", tmp_path)) / "report.png"
    out = headless(report.as_uri(), f"--screenshot={shot}", size="1280,1400")
    assert shot.exists(), out.stderr[-2000:]
    assert (decode(shot.read_bytes()).width, decode(shot.read_bytes()).height) == (1280, 1400)
    charts_drawn(shot.read_bytes())
