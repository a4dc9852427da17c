"""Entry point of the strategy service (`stock-manager run strategy`)."""

from __future__ import annotations

from shared.service import idle_until_stopped, run_service


def main() -> int:
    return run_service("strategy", idle_until_stopped)
