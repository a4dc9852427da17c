"""Execution's settings (``SM_EXEC_*``) come through pydantic-settings like every service's: a
malformed one stops the process at start with one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stock_manager.services.execution.context import ExecutionConfig, load_config
from stock_manager.shared.settings import SettingsError


@pytest.fixture(autouse=True)
def _no_exec_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("SM_EXEC_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_config() == ExecutionConfig()
    assert load_config().reconcile_s == 15.0 and load_config().full_listing_every == 20
    monkeypatch.setenv("SM_EXEC_RECONCILE_S", "2.5")
    monkeypatch.setenv("SM_EXEC_FULL_LISTING_EVERY", "1000")
    cfg = load_config()
    assert cfg.reconcile_s == 2.5 and cfg.full_listing_every == 1000


@pytest.mark.parametrize(
    ("var", "value"),
    [("SM_EXEC_POLL_S", "soon"), ("SM_EXEC_POLL_S", "0"), ("SM_EXEC_FULL_LISTING_EVERY", "0"),
     ("SM_EXEC_MAX_SUBMIT_ATTEMPTS", "1.5"), ("SM_EXEC_LEASE_TTL_S", "-1")],
)
def test_a_malformed_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as e:
        load_config()
    assert str(e.value).startswith(f"setting {var} is malformed: ") and "\n" not in str(e.value)


def test_a_send_deadline_must_come_before_a_resolver_may_take_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_EXEC_STALE_PENDING_S", "3")
    with pytest.raises(SettingsError, match="^setting SM_EXEC_SEND_DEADLINE_S is malformed: .*SM_EXEC_STALE_PENDING_S"):
        load_config()
    monkeypatch.setenv("SM_EXEC_SEND_DEADLINE_S", "2")
    assert load_config().send_deadline_s == 2.0


def test_the_service_stops_at_start_with_that_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
           "SM_EXEC_RECONCILE_S": "often"}
    out = subprocess.run([sys.executable, "-m", "stock_manager", "run", "execution"], capture_output=True, text=True,
                         env=env, cwd=str(tmp_path), timeout=60, check=False)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "stock-manager execution: setting SM_EXEC_RECONCILE_S is malformed: "
        "Input should be a valid number, unable to parse string as a number"]
