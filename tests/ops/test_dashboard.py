"""The dashboard as a real process on a seeded day: JSON, /metrics, alerts to a local webhook, no
secrets anywhere, and the page as a real headless Chromium renders it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.ops import seed
from tests.ops.browser import GLYPHS_JS, evaluate, headless
from tests.ops.png import decode
from tests.ops.support import Dashboard, Receiver, leaked
from tests.support.pg import TestDb


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def dash(seeded_module: TestDb, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    seed.touch_heartbeats(seeded_module.admin_url)
    d = Dashboard(seeded_module.admin_url, tmp_path_factory.mktemp("dash") / "dashboard.log",
                  SM_ALERT_WEBHOOK_URL=receiver.url, SM_ALERT_INTERVAL_S="0.2", SM_ALERT_MIN_INTERVAL_S="0")
    try:
        yield d
    finally:
        assert d.stop() == 0, d.log.read_text()[-2000:]


def test_snapshot_json_is_the_day(dash: Dashboard, seeded_module: TestDb) -> None:
    seed.touch_heartbeats(seeded_module.admin_url)
    resp = dash.get("/api/snapshot")
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    s = resp.json()
    assert s["mode"] == "sim" and s["trading_state"]["trade_date"] == "2026-11-23"
    assert [p["symbol"] for p in s["positions"]] == ["005930", "035720"]
    assert s["pnl"]["total"] == float(seed.TOTAL)
    assert len(s["pnl_series"]) == 7 and s["pnl_series"][-1]["cum_realized"] == float(
        seed.REALIZED_CLOSED + seed.REALIZED_OPEN)
    assert {x["service"]: x["state"] for x in s["services"]}["execution"] == "down"
    assert s["open_orders"]["count"] == 1 and s["open_intents"]["count"] == 1
    assert [c["kind"] for c in s["corrections"]] == ["UnknownBrokerOrder", "InDoubtResolved", "ReconcileCorrection"]


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')


def test_metrics_are_prometheus_text(dash: Dashboard) -> None:
    resp = dash.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    typed: dict[str, str] = {}
    samples: dict[str, float] = {}
    for line in resp.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in typed, f"{name} typed twice"
            typed[name] = kind
        elif line.startswith("# HELP ") or not line:
            continue
        else:
            m = _SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            assert m.group(1) in typed, f"{m.group(1)} has no TYPE"
            samples[line.rsplit(" ", 1)[0]] = float(m.group(4))
    assert typed["stock_manager_fills_total"] == "counter" and typed["stock_manager_service_up"] == "gauge"
    assert samples['stock_manager_pnl_today_krw{kind="total"}'] == float(seed.TOTAL)
    assert samples['stock_manager_position_unrealized_pnl_krw{symbol="005930"}'] == 16947
    assert samples['stock_manager_service_up{service="execution"}'] == 0
    assert samples['stock_manager_open_orders{status="SUBMITTED"}'] == 1
    assert samples['stock_manager_reconciliation_events_total{kind="ReconcileCorrection"}'] == 1
    assert samples["stock_manager_fills_total"] == 7
    assert samples['stock_manager_prices_watched{freshness="stale"}'] == 1  # 035720, held
    assert samples['stock_manager_prices_watched{freshness="fresh"}'] == 1
    assert samples['stock_manager_order_latency_seconds{quantile="0.5",stage="submit",window="1h"}'] == 0.08


def test_pages_read_as_sm_readonly_and_write_as_sm_dashboard(dash: Dashboard, seeded_module: TestDb) -> None:
    assert dash.get("/healthz").text == "ok\n"
    with psycopg.connect(seeded_module.admin_url) as conn:
        users = {r[0] for r in conn.execute(
            "SELECT usename FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")}
    assert users == {"sm_readonly", "sm_dashboard"}


def test_alerts_reach_the_webhook_once_each(dash: Dashboard, receiver: Receiver, seeded_module: TestDb) -> None:
    for needle in ("ServiceDown", "StalePrice", "RiskViolation", "ReconcileCorrection", "UnknownBrokerOrder"):
        receiver.wait_for(needle)
    with psycopg.connect(seeded_module.admin_url, autocommit=True) as conn:
        conn.execute("UPDATE trade.trading_state SET state = 'HALTED', reason = 'test halt', changed_by = 'me'")
        halted = receiver.wait_for("TradingHalted")
        assert "test halt" in halted
        conn.execute("UPDATE trade.trading_state SET state = 'ACTIVE', reason = 'resume', changed_by = 'me'")
        receiver.wait_for("TradingHaltedResolved")
    joined = "\n".join(receiver.texts())
    assert joined.count("*RiskViolation*") == 1 and joined.count("*ReconcileCorrection*") == 1
    assert all(p == receiver.url.split(str(receiver.port))[1] for p in receiver.paths)
    assert not leaked(joined)
    with psycopg.connect(seeded_module.admin_url) as conn:
        statuses: dict[str, int] = dict(
            conn.execute("SELECT status, count(*) FROM monitor.alert_log GROUP BY status").fetchall())
    assert set(statuses) <= {"SENT", "SUPPRESSED"}


def test_no_secret_in_any_response_or_log(dash: Dashboard) -> None:
    for path in ("/", "/api/snapshot", "/metrics", "/healthz", "/static/dashboard.js"):
        resp = dash.get(path)
        assert resp.status_code == 200, path
        assert not leaked(resp.text), path
    assert not leaked(dash.log.read_text())


_NAME_CELL = 'document.querySelector(\'tr.position-row[data-symbol="005930"] td:nth-child(2)\')'


def _dashboard_glyphs(chromium: str, dash: Dashboard) -> str:
    """The glyph check on the real dashboard page: the 005930 position's name cell, in its own font."""
    result = evaluate(
        chromium, dash.url + "/", ready=f'document.body?.dataset.loaded === "1" && !!{_NAME_CELL}',
        expression=f"(() => {{ {GLYPHS_JS}\n const cell = {_NAME_CELL};\n"
                   "  return glyphs(document, getComputedStyle(cell).font, cell.textContent); })()")
    return str(result)


def test_the_page_renders_in_headless_chromium(dash: Dashboard, seeded_module: TestDb, tmp_path: Path,
                                               chromium_with_cjk: str) -> None:
    seed.touch_heartbeats(seeded_module.admin_url)
    out = headless(dash.url + "/", "--dump-dom")
    dom = out.stdout
    assert 'data-loaded="1"' in dom, out.stderr[-2000:]
    assert re.search(r'<tr class="position-row" data-symbol="005930">', dom)
    assert re.search(r'<tr class="position-row" data-symbol="035720">', dom)
    assert re.search(r'<svg id="pnl-chart"[^>]*data-points="7"', dom)
    assert '<path class="series"' in dom
    assert dom.count('<circle class="buy" ') + dom.count('<circle class="sell" ') == 7
    for key in ("buy fill", "sell fill", "realized", "+ unrealized now"):  # what the dots and lines mean
        assert f">{key}</text>" in dom
    yticks = re.findall(r'class="axis ytick"[^>]*>([^<]+)<', dom)
    assert len(yticks) >= 4 and "0" in yticks, yticks  # a scale, not just 0 and the extreme
    assert "+34,008" in dom and "삼성전자" in dom and "SUBMITTED" in dom
    assert "execution is down" in dom
    assert "prices that matter (held, locked, candidates, watch list): 1 of 2 fresh" in dom
    assert " wall clock</span>" in dom  # "updated" is the wall clock's time, the header's the market's
    assert not leaked(dom)

    shot = Path(os.environ.get("SM_TEST_SCREENSHOT_DIR", tmp_path)) / "dashboard.png"
    out = headless(dash.url + "/", f"--screenshot={shot}")
    assert shot.exists(), out.stderr[-2000:]
    png = shot.read_bytes()
    assert len(png) > 30_000, "a rendered dashboard is not a few bytes of flat colour"
    img = decode(png)
    assert (img.width, img.height) == (1280, 1200)
    colours = img.colours()
    assert len(colours) > 200, f"only {len(colours)} colours: blank page?"
    background, share = colours.most_common(1)[0]
    assert share / sum(colours.values()) < 0.6, f"{background} covers most of the page"
    assert any(r > 180 and g < 110 and b < 110 for (r, g, b) in colours), "no red (gains / alerts) on the page"

    glyphs = _dashboard_glyphs(chromium_with_cjk, dash)
    assert glyphs.startswith("boxed=0 text=삼성전자 "), (
        f"the dashboard draws the Korean name as boxes ({glyphs}): apt-get install fonts-noto-cjk")


def test_no_table_is_cut_off_at_1400_px(dash: Dashboard, seeded_module: TestDb, chromium: str) -> None:
    seed.touch_heartbeats(seeded_module.admin_url)
    for width in (1400, 1280, 1920):
        dom = headless(dash.url + "/", "--dump-dom", size=f"{width},1000").stdout
        assert 'data-loaded="1"' in dom
        (over,) = re.findall(r'<body[^>]*data-overflow="([^"]*)"', dom)
        assert over == "", f"at {width} px these tables are wider than their card: {over}"


def test_korean_names_render_as_glyphs_not_boxes(tmp_path: Path, chromium_with_cjk: str) -> None:
    """With the dashboard's font stack, Hangul is drawn by a font that has it (CI installs fonts-noto-cjk)."""
    from stock_manager.shared.resources import package_path

    css = Path(str(package_path("stock_manager.dashboard", "static", "dashboard.css")))
    page = tmp_path / "fonts.html"
    page.write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="{css.as_uri()}"></head><body><span id="out">-</span><script>
{GLYPHS_JS}
document.getElementById("out").textContent = glyphs(document, getComputedStyle(document.body).font, "삼성전자카오");
</script></body></html>""", encoding="utf-8")
    dom = headless(page.as_uri(), "--dump-dom", "--allow-file-access-from-files").stdout
    (result,) = re.findall(r'<span id="out">([^<]*)<', dom)
    assert result.startswith("boxed=0 "), f"Hangul renders as boxes ({result}): apt-get install fonts-noto-cjk"
