from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest

from stock_manager.shared.market_rules import FeeSchedule
from stock_manager.shared.settings import Mode, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for k in ("DATABASE_URL", "SM_MODE", "KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ACCOUNT", "KIS_HTS_ID",
              "KIS_REST_URL", "KIS_WS_URL", "SM_DB_ROLE_PASSWORD", "KIS_APP_SECRET_FILE", "KIS_FEE_SCHEDULE",
              "KIS_COMMISSION_RATE", "SM_SIM_CLOCK"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


def test_sim_defaults_point_at_the_local_simulator() -> None:
    s = load_settings()
    assert s.sm_mode is Mode.SIM
    assert s.rest_url == "http://127.0.0.1:8800" and s.ws_url == "ws://127.0.0.1:8800"
    assert s.credential("kis_account").get_secret_value() == "50000000-01"


def test_paper_and_live_default_to_kis_domains_and_flavours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_MODE", "paper")
    s = load_settings()
    assert s.rest_url.startswith("https://openapivts") and s.kis_env == "paper"
    monkeypatch.setenv("SM_MODE", "live")
    assert load_settings().kis_env == "real"


def test_paper_follows_the_simulator_clock_only_against_a_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().follows_sim_clock  # sim mode always does
    monkeypatch.setenv("SM_MODE", "paper")
    assert not load_settings().follows_sim_clock
    monkeypatch.setenv("SM_SIM_CLOCK", "1")
    with pytest.raises(SettingsError, match="^setting SM_SIM_CLOCK is malformed: .*pointing at the simulator"):
        load_settings()  # KIS's own paper host, by default
    monkeypatch.setenv("KIS_REST_URL", "https://openapivts.koreainvestment.com:29443")
    with pytest.raises(SettingsError, match="^setting SM_SIM_CLOCK is malformed"):
        load_settings()
    monkeypatch.setenv("KIS_REST_URL", "http://127.0.0.1:8800")
    assert load_settings().follows_sim_clock
    monkeypatch.setenv("SM_MODE", "live")
    with pytest.raises(SettingsError, match="^setting SM_SIM_CLOCK is malformed: .*live mode runs on the system clock"):
        load_settings()


def test_a_missing_credential_outside_sim_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_MODE", "live")
    with pytest.raises(SettingsError, match=r"^setting KIS_APP_KEY is missing \(required in live mode\)$"):
        load_settings().credential("kis_app_key")


@pytest.mark.parametrize(
    ("var", "value", "name"),
    [("KIS_ACCOUNT", "1234-5", "KIS_ACCOUNT"), ("SM_MODE", "prod", "SM_MODE"),
     ("DATABASE_URL", "host=x port=notaport =", "DATABASE_URL"), ("SM_DASHBOARD_ADDR", "nohost", "SM_DASHBOARD_ADDR"),
     ("KIS_FEE_SCHEDULE", '[{"rate": "0.5"}]', "KIS_FEE_SCHEDULE"),
     ("KIS_FEE_SCHEDULE", "0.015%", "KIS_FEE_SCHEDULE"),
     ("KIS_FEE_SCHEDULE", '[{"rate": "0.001"}, {"rate": "0.002"}]', "KIS_FEE_SCHEDULE")],
)
def test_a_malformed_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, name: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as e:
        load_settings()
    assert str(e.value).startswith(f"setting {name} is malformed")
    assert ("\n" not in str(e.value) and value not in str(e.value)) or var == "SM_MODE"


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIS_APP_SECRET", "topsecretvalue123")
    monkeypatch.setenv("KIS_ACCOUNT", "12345678-01")
    s = load_settings()
    assert "topsecretvalue123" not in repr(s) and "12345678" not in str(s)
    assert "topsecretvalue123" in s.secret_values()


def test_role_url_swaps_the_user_and_keeps_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin:pw@db.example:6543/sm?sslmode=require")
    monkeypatch.setenv("SM_DB_ROLE_PASSWORD", "rolepw")
    url = load_settings().role_url("execution")
    assert "user=sm_execution" in url and "password=rolepw" in url
    assert "sslmode=require" in url and "port=6543" in url and "dbname=sm" in url


def test_secret_files_docker_style(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    import pathlib

    f = pathlib.Path(str(tmp_path)) / "secret"
    f.write_text("from-a-file\n")
    monkeypatch.setenv("KIS_APP_SECRET_FILE", str(f))
    assert load_settings().credential("kis_app_secret").get_secret_value() == "from-a-file"


def test_a_service_without_database_url_stops_with_one_line(tmp_path: object) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "stock_manager", "run", "execution"],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=60, check=False,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["stock-manager execution: setting DATABASE_URL is missing"]


def test_fees_are_a_flat_rate_unless_a_schedule_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().fees == Decimal("0.00015")
    monkeypatch.setenv("KIS_FEE_SCHEDULE",
                       '[{"below": 2000000, "rate": "0.004971"}, {"rate": "0.0015", "fixed": 2000}]')
    fees = load_settings().fees
    assert isinstance(fees, FeeSchedule)
    assert fees.fee(1_000_000) == Decimal(4971) and fees.fee(2_000_000) == Decimal(5000)


@pytest.mark.parametrize("service", ["execution", "kis-sim"])
def test_a_malformed_fee_schedule_stops_the_service_with_one_line(tmp_path: object, service: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
           "KIS_FEE_SCHEDULE": '[{"below": 100, "rate": "0.001"}]'}
    out = subprocess.run(
        [sys.executable, "-m", "stock_manager", "run", service, *(["--port", "1"] if service == "kis-sim" else [])],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=60, check=False,
    )
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert "setting KIS_FEE_SCHEDULE is malformed: " in line, line
    assert line.endswith("only the last tier may be unbounded, and it must be"), line
