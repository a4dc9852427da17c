"""Entry point of the pricesync service (`stock-manager run pricesync`)."""

from __future__ import annotations

from shared.service import idle_until_stopped, run_service


def main() -> int:
    return run_service("pricesync", idle_until_stopped)
