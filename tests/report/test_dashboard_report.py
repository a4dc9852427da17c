"""The dashboard's /report: a real dashboard process renders the day's report as sm_readonly, serves
it with its PNGs, renders again only when the day changed, and links to it from its page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.ops.browser import headless
from tests.ops.png import decode
from tests.ops.seed import TRADE_DATE, at
from tests.ops.support import Dashboard
from tests.report.support import charts_drawn, probe
from tests.support.pg import TestDb

DAY = TRADE_DATE.isoformat()


@pytest.fixture(scope="module")
def dash(report_module_db: TestDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    d = Dashboard(report_module_db.admin_url, tmp_path_factory.mktemp("dash") / "dashboard.log")
    try:
        yield d
    finally:
        assert d.stop() == 0, d.log.read_text()[-2000:]


def _open(dash: Dashboard, query: str) -> str:
    resp = dash.get("/report" + query)
    assert resp.status_code == 303, resp.text
    location = resp.headers["location"]
    assert re.fullmatch(rf"/report/{DAY}/[0-9a-f]{{16}}/", location), location
    return location


def test_the_day_report_is_served_with_its_charts(dash: Dashboard) -> None:
    page_url = _open(dash, f"?date={DAY}")
    page = dash.get(page_url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "img-src 'self'" in csp and "script-src" not in csp and "default-src 'none'" in csp
    html = page.text
    assert "SK하이닉스" in html and "TAKE_PROFIT" in html and "STOP_LOSS" in html
    assert re.search(r'id="profit-factor">2\.29<', html) and re.search(r'id="max-drawdown">11,910<', html)
    for name in re.findall(r'<img[^>]* src="([^"]+)"', html):
        img = dash.get(page_url + name)
        assert img.status_code == 200 and img.headers["content-type"] == "image/png", name
        assert decode(img.content).width >= 800
    assert _open(dash, "") == page_url  # no date: the latest day with fills, the same render


def test_it_renders_again_only_when_the_day_changed(dash: Dashboard, report_module_db: TestDb) -> None:
    first = _open(dash, f"?date={DAY}")
    assert _open(dash, f"?date={DAY}") == first
    with psycopg.connect(report_module_db.admin_url, autocommit=True) as conn:
        order_id = conn.execute("SELECT order_id FROM trade.orders WHERE broker_order_no = '0000000008'").fetchone()
        assert order_id is not None
        conn.execute("INSERT INTO trade.fills (order_id, exec_key, symbol, side, qty, price, fee, tax, ts, source) "
                     "VALUES (%s, 'late', '000660', 'BUY', 1, 119500, 18, 0, %s, 'RECONCILE')",
                     (order_id[0], at(13, 55)))
    second = _open(dash, f"?date={DAY}")
    assert second != first
    assert "1,139" in dash.get(second).text  # the fees now include the new fill's 18 won
    assert dash.get(first).status_code == 200  # the earlier render is kept for a page already open


def test_what_is_refused(dash: Dashboard) -> None:
    assert dash.get("/report?date=23-11-2026").status_code == 400
    assert dash.get(f"/report/{DAY}/0123456789abcdef/").status_code == 404
    page_url = _open(dash, f"?date={DAY}")
    for name in ("index.html.bak", "..%2F..%2Fetc%2Fpasswd", "trip-1.png", "secret.png"):
        assert dash.get(page_url + name).status_code == 404, name
    empty = dash.get("/report?date=2026-11-20")  # a day with nothing: an empty report, not an error
    assert empty.status_code == 303
    assert "No round trip closed on this day." in dash.get(empty.headers["location"]).text


def test_the_dashboard_links_to_the_day_report(dash: Dashboard, chromium: str, tmp_path: Path) -> None:
    assert 'id="report-link"' in dash.get("/").text
    dom = headless(dash.url + "/", "--dump-dom").stdout
    assert f'id="report-link" class="report-link" href="/report?date={DAY}"' in dom
    # in a browser, through the redirect and the dashboard's own headers (CSP): every chart loads
    found = probe(chromium, dash.url + f"/report?date={DAY}")
    assert [(src, ok, width > 0) for src, ok, width in found["images"]] == [
        ("equity.png", True, True), ("trip-01.png", True, True), ("trip-02.png", True, True)]
    shot = tmp_path / "dashboard-report.png"
    headless(dash.url + f"/report?date={DAY}", f"--screenshot={shot}", size="1280,1400")
    charts_drawn(shot.read_bytes())
