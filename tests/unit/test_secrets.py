"""``stock-manager secrets`` and the keyring as the last source of a credential.

The keyring is keyrings.alt's file backend in a temporary directory (the tests' stand-in for
Windows Credential Manager, the macOS Keychain or the Secret Service, which all sit behind the
same ``keyring`` API).  The command runs as a real process with the value on its stdin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyrings.alt.file import PlaintextKeyring  # type: ignore[import-untyped]

from stock_manager.shared import keyring_secrets
from stock_manager.shared.settings import load_settings

VALUE = "s3cr3t-앱시크릿-Zq9"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "SM_", "DATABASE_URL"))}
    env.update({"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
                "XDG_DATA_HOME": str(tmp_path / "data"), "SM_KEYRING_ALLOW_PLAINTEXT": "1",
                "PYTHONIOENCODING": "utf-8", **extra})
    return env


def _cli(tmp_path: Path, *args: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stock_manager", *args], input=stdin, capture_output=True,
                          text=True, encoding="utf-8", env=_env(tmp_path, **extra), cwd=tmp_path, timeout=60)


def _settings_in_child(tmp_path: Path, **extra: str) -> str:
    """What a service started in that environment reads as KIS_APP_SECRET (a digest, never the value)."""
    code = ("import hashlib; from stock_manager.shared.settings import load_settings; "
            "v = load_settings().kis_app_secret; "
            "print('unset' if v is None else hashlib.sha256(v.get_secret_value().encode()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path, **extra),
                         cwd=tmp_path, timeout=60, check=True)
    return out.stdout.strip()


def _digest(v: str) -> str:
    import hashlib

    return hashlib.sha256(v.encode()).hexdigest()


def test_set_stores_from_stdin_never_prints_and_settings_read_it(tmp_path: Path) -> None:
    r = _cli(tmp_path, "secrets", "set", "KIS_APP_SECRET", stdin=VALUE + "\n")
    assert r.returncode == 0, r.stderr
    assert VALUE not in r.stdout + r.stderr
    assert "KIS_APP_SECRET stored" in r.stderr
    stored = list((tmp_path / "data").rglob("*.cfg"))
    assert stored, "the file backend wrote nothing"
    assert _settings_in_child(tmp_path) == _digest(VALUE)

    # the variable and NAME_FILE win over the keyring (containers keep working)
    assert _settings_in_child(tmp_path, KIS_APP_SECRET="from-env") == _digest("from-env")
    f = tmp_path / "secret.txt"
    f.write_text("from-file\n", encoding="utf-8")
    assert _settings_in_child(tmp_path, KIS_APP_SECRET_FILE=str(f)) == _digest("from-file")

    r = _cli(tmp_path, "secrets", "delete", "KIS_APP_SECRET")
    assert r.returncode == 0 and "deleted" in r.stderr
    assert _settings_in_child(tmp_path) == "unset"
    r = _cli(tmp_path, "secrets", "delete", "KIS_APP_SECRET")
    assert r.returncode == 0 and "was not in the keyring" in r.stderr


def test_an_empty_value_or_an_unknown_name_stores_nothing(tmp_path: Path) -> None:
    r = _cli(tmp_path, "secrets", "set", "KIS_APP_SECRET", stdin="")
    assert r.returncode == 2 and "nothing stored" in r.stderr
    r = _cli(tmp_path, "secrets", "set", "PATH", stdin="x")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    assert not list((tmp_path / "data").rglob("*.cfg"))


def test_a_plain_text_backend_is_refused_unless_allowed(tmp_path: Path) -> None:
    r = _cli(tmp_path, "secrets", "set", "KIS_APP_KEY", stdin=VALUE, SM_KEYRING_ALLOW_PLAINTEXT="0")
    assert r.returncode == 1
    assert "plain text" in r.stderr and VALUE not in r.stderr
    assert not list((tmp_path / "data").rglob("*.cfg"))


def test_without_any_keyring_settings_still_load_and_set_says_why(tmp_path: Path) -> None:
    extra = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    assert _settings_in_child(tmp_path, **extra) == "unset"
    r = _cli(tmp_path, "secrets", "set", "KIS_APP_SECRET", stdin=VALUE, **extra)
    assert r.returncode == 1 and "no OS keyring" in r.stderr and VALUE not in r.stderr


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyringBackend]:
    before = keyring.get_keyring()
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")
    keyring.set_keyring(backend)
    monkeypatch.setenv(keyring_secrets.ALLOW_PLAINTEXT, "1")
    for name in keyring_secrets.NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the working tree
    try:
        yield backend
    finally:
        keyring.set_keyring(before)


def test_every_credential_can_come_from_the_keyring_and_none_prints(file_keyring: KeyringBackend) -> None:
    values = {"KIS_APP_KEY": "PSkey", "KIS_APP_SECRET": VALUE, "KIS_ACCOUNT": "12345678-01", "KIS_HTS_ID": "hts",
              "SM_DB_ROLE_PASSWORD": "pw"}
    for name, value in values.items():
        keyring_secrets.store(name, value)
    s = load_settings(sm_mode="paper")
    for name in ("KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ACCOUNT", "KIS_HTS_ID"):
        assert s.credential(name.lower()).get_secret_value() == values[name]
    assert s.sm_db_role_password is not None and s.sm_db_role_password.get_secret_value() == "pw"
    assert VALUE in s.secret_values()  # so the log redactor knows it
    assert VALUE not in repr(s) and VALUE not in str(s.model_dump())


def test_a_malformed_stored_value_is_named_like_any_other(file_keyring: KeyringBackend) -> None:
    from stock_manager.shared.settings import SettingsError

    keyring_secrets.store("KIS_ACCOUNT", "not-an-account")
    with pytest.raises(SettingsError, match="KIS_ACCOUNT") as e:
        load_settings()
    assert "not-an-account" not in str(e.value)
