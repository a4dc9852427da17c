"""Credentials kept encrypted at rest in the OS keyring (seed 004 section 5.1).

The ``keyring`` library reaches Windows Credential Manager, the macOS Keychain and the Secret
Service (GNOME Keyring, KWallet) through one API, so nothing here knows which one it talks to.
``stock-manager secrets set NAME`` stores a value; ``Settings`` reads it when neither the variable
nor ``NAME_FILE`` gives one, so containers (no keyring) keep using those.

A lookup that fails for want of a keyring is not an error: the setting is then simply unset and,
if required, reported missing by name as any other.
"""

from __future__ import annotations

import os
from typing import Any

# every entry lives under this service name, the setting's name as the user name
SERVICE = "stock-manager"

# what may be stored: the settings that are secrets (CONTRACT.md section 2)
NAMES = ("KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ACCOUNT", "KIS_HTS_ID", "SM_DB_ROLE_PASSWORD")

# backends that keep the value in plain text; storing there would defeat the point
PLAINTEXT_BACKENDS = {"keyrings.alt.file.PlaintextKeyring", "keyring.backends.null.Keyring"}
# the tests' file backend (keyrings.alt) is plain text; they say so with this variable
ALLOW_PLAINTEXT = "SM_KEYRING_ALLOW_PLAINTEXT"


class KeyringUnavailable(Exception):
    """One line, fit to print: why the value cannot be stored or removed."""


def lookup(name: str) -> str | None:
    """The stored value, or None when there is none or no keyring to ask."""
    try:
        import keyring

        value = keyring.get_password(SERVICE, name)
    except Exception:  # no backend (a container, a headless server): the variable is how it comes there
        return None
    return value or None


def _backend() -> Any:
    import keyring

    backend = keyring.get_keyring()
    kind = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if kind.startswith("keyring.backends.fail."):
        raise KeyringUnavailable("no OS keyring is available here; set the variable or NAME_FILE instead")
    if kind in PLAINTEXT_BACKENDS and os.environ.get(ALLOW_PLAINTEXT) != "1":
        raise KeyringUnavailable(f"the keyring backend here ({kind}) keeps secrets in plain text; "
                                 "set the variable or NAME_FILE instead")
    return backend


def backend_name() -> str:
    backend = _backend()
    return str(getattr(backend, "name", type(backend).__name__))


def store(name: str, value: str) -> None:
    import keyring.errors

    try:
        _backend().set_password(SERVICE, name, value)
    except keyring.errors.KeyringError as e:
        raise KeyringUnavailable(f"the keyring refused to store {name}: {type(e).__name__}") from None


def delete(name: str) -> bool:
    """Remove the stored value; False when there was none."""
    import keyring.errors

    try:
        _backend().delete_password(SERVICE, name)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as e:
        raise KeyringUnavailable(f"the keyring refused to delete {name}: {type(e).__name__}") from None
    return True
