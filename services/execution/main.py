"""Entry point of the execution service (`stock-manager run execution`)."""

from __future__ import annotations

from shared.service import idle_until_stopped, run_service


def main() -> int:
    return run_service("execution", idle_until_stopped)
