"""Pure parts of monitoring: alert planning and rate limits, the metrics text, the screen, settings."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from stock_manager import status
from stock_manager.cli import build_parser, child_specs
from stock_manager.dashboard.alerts import Pending, RateLimiter, format_text, plan_batch
from stock_manager.dashboard.config import listen_addr, load_dashboard_config, writer_url
from stock_manager.dashboard.metrics import Family, exposition, families
from stock_manager.monitor import jsonable
from stock_manager.shared.settings import Settings, SettingsError, load_settings


def _p(i: int, key: str, source: str = "event") -> Pending:
    return Pending(i, key.split(":")[0], "warning", key, f"message {i}", source)


def test_plan_folds_repeats_suppresses_recent_and_defers_overflow() -> None:
    pending = [_p(1, "A:x"), _p(2, "A:x"), _p(3, "B:y"), _p(4, "C:z"), _p(5, "D:w"), _p(6, "R", "resolved"),
               _p(7, "A:x")]
    plan = plan_batch(pending, recently_sent={"B:y"}, max_lines=3)
    assert [a.alert_id for a in plan.send] == [1, 4, 5]
    assert sorted(plan.suppress) == [2, 3, 7]
    assert plan.repeats == {1: 2}
    text = format_text(plan, "live")
    assert text.startswith("[stock-manager live] 3 alerts\n") and "(+2 more like it)" in text
    # the resolution (6) waits for the next post rather than being dropped
    assert 6 not in plan.suppress and 6 not in [a.alert_id for a in plan.send]


def test_a_resolution_is_never_suppressed() -> None:
    plan = plan_batch([_p(1, "A:x:resolved", "resolved")], recently_sent={"A:x:resolved"}, max_lines=5)
    assert [a.alert_id for a in plan.send] == [1]
    assert format_text(plan, "sim") == "[stock-manager sim] :warning: *A* message 1"


def test_rate_limiter_spacing_per_minute_cap_and_backoff() -> None:
    now = [0.0]
    lim = RateLimiter(min_interval_s=1.0, max_per_min=3, now=lambda: now[0])
    sent = []
    for _ in range(260):  # 130 s in half-second steps
        if lim.allowed():
            lim.record_success()
            sent.append(now[0])
        now[0] += 0.5
    assert sent == [0, 1, 2, 60, 61, 62, 120, 121, 122]
    now[0] = 1000.0
    assert lim.allowed()
    assert lim.record_failure() == 2.0 and not lim.allowed()
    now[0] += 2.0
    assert lim.allowed()
    assert lim.record_failure() == 4.0
    assert lim.record_failure(retry_after_s=30) == 30
    now[0] += 29
    assert not lim.allowed()


def test_exposition_escapes_labels_and_formats_numbers() -> None:
    f = Family("x", "gauge", "help text")
    f.add(1.5, symbol='a"b\\c\nd')
    f.add(None, symbol="skipped")
    f.add(Decimal(3), symbol="int")
    text = exposition([f])
    assert text == ('# HELP stock_manager_x help text\n# TYPE stock_manager_x gauge\n'
                    'stock_manager_x{symbol="a\\"b\\\\c\\nd"} 1.5\nstock_manager_x{symbol="int"} 3\n')


def test_metrics_of_an_empty_database_are_complete() -> None:
    fams = {f.name: f for f in families({}, {})}
    assert fams["trading_state"].samples == [({"state": s}, 0.0) for s in ("ACTIVE", "REDUCING", "HALTED")]
    assert fams["positions"].samples == [({}, 0.0)]
    assert all(f.kind in ("gauge", "counter") for f in fams.values())
    assert all(f.name.endswith("_total") == (f.kind == "counter") for f in fams.values())


def test_the_screen_of_an_empty_database() -> None:
    screen = status.render({})
    assert "trading state: ?" in screen and "open intents 0" in screen and "positions 0" in screen
    with_children = status.render({}, [{"name": "dashboard", "state": "running", "pid": 7, "restarts": 0,
                                        "uptime_s": 3.0}])
    assert "dashboard" in with_children


def test_jsonable() -> None:
    assert jsonable({"a": Decimal("1.50"), "b": [Decimal(2)], "c": None}) == {"a": 1.5, "b": [2], "c": None}


def test_monitoring_urls_keep_sslmode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin:adminpw@db.example:6543/sm?sslmode=verify-full")
    monkeypatch.setenv("SM_DB_ROLE_PASSWORD", "rolepw")
    s = load_settings()
    for url, user in ((s.role_url("readonly"), "sm_readonly"), (writer_url(s), "sm_dashboard")):
        assert f"user={user}" in url and "sslmode=verify-full" in url and "password=rolepw" in url
        assert "adminpw" not in url and "host=db.example" in url and "port=6543" in url
    monkeypatch.setenv("SM_DB_URL_DASHBOARD", "host=elsewhere user=dash")
    assert writer_url(load_settings()) == "host=elsewhere user=dash"


def test_dashboard_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert listen_addr(Settings(sm_dashboard_addr="10.1.2.3:9090")) == ("10.1.2.3", 9090)
    assert listen_addr(Settings()) == ("127.0.0.1", 8080)
    monkeypatch.delenv("SM_ALERT_WEBHOOK_URL", raising=False)
    secret = tmp_path / "hook"
    secret.write_text("https://hooks.slack.com/services/T1/B2/secretpart\n")
    monkeypatch.setenv("SM_ALERT_WEBHOOK_URL_FILE", str(secret))
    cfg = load_dashboard_config()
    assert cfg.webhook_host == "hooks.slack.com" and "secretpart" not in repr(cfg)
    monkeypatch.setenv("SM_ALERT_WEBHOOK_URL", "ftp://nope")
    with pytest.raises(SettingsError, match="SM_ALERT_WEBHOOK_URL"):
        load_dashboard_config()


def test_up_supervises_the_dashboard() -> None:
    specs = {s.name: s for s in child_specs(Settings(database_url="host=x dbname=y"), "host=x dbname=y")}
    assert list(specs) == ["kis-sim", "pricesync", "strategy", "execution", "dashboard"]
    assert list(specs["dashboard"].argv[-2:]) == ["run", "dashboard"]
    assert build_parser().parse_args(["run", "dashboard"]).service == "dashboard"
