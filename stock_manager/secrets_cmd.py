"""``stock-manager secrets set NAME`` / ``secrets delete NAME``: credentials into the OS keyring.

The value comes from standard input and nowhere else, so it never sits in the shell's history or
in the process list: typed at a terminal it is read without echo; piped (``Get-Content key.txt |
stock-manager secrets set KIS_APP_SECRET``) it is read whole, one trailing line break dropped.
Nothing here prints a value, only names.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from stock_manager.shared import keyring_secrets


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="secrets_command", required=True)
    st = sub.add_parser("set", help="store NAME's value, read from standard input")
    st.add_argument("name", choices=keyring_secrets.NAMES)
    dl = sub.add_parser("delete", help="remove NAME from the keyring")
    dl.add_argument("name", choices=keyring_secrets.NAMES)


def run(args: argparse.Namespace) -> int:
    name: str = args.name
    try:
        if args.secrets_command == "set":
            value = _read_value(name)
            if not value:
                print(f"stock-manager: no value for {name} on standard input; nothing stored", file=sys.stderr)
                return 2
            keyring_secrets.store(name, value)
            print(f"stock-manager: {name} stored in the keyring ({keyring_secrets.backend_name()})",
                  file=sys.stderr)
            return 0
        if keyring_secrets.delete(name):
            print(f"stock-manager: {name} deleted from the keyring", file=sys.stderr)
        else:
            print(f"stock-manager: {name} was not in the keyring", file=sys.stderr)
        return 0
    except keyring_secrets.KeyringUnavailable as e:
        print(f"stock-manager: {e}", file=sys.stderr)
        return 1


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"{name} (not echoed): ")
    text = sys.stdin.read()
    return text.removesuffix("\n").removesuffix("\r")
