"""Fault injection and the per-app-key rate limit (``POST /sim/faults``).

The rate limit is part of the KIS behaviour (on by default); the other knobs are off by default
and exist so that the rest of the system can be tested against the failures KIS really shows:
spurious 500s and EGW00201s, requests that never answer, orders whose answer is lost, dropped
WebSocket sessions and duplicated notices.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import Any

from .config import SimConfig

_RATES = (
    "http_500_rate",
    "egw00201_rate",
    "timeout_rate",
    "lost_response_rate",
    "duplicate_notice_rate",
    "notice_drop_rate",
    "exchange_reject_rate",
)


class FaultConfigError(ValueError):
    pass


@dataclass(slots=True)
class Faults:
    rate_limit_per_s: float | None = None
    http_500_rate: float = 0.0
    egw00201_rate: float = 0.0
    timeout_rate: float = 0.0
    lost_response_rate: float = 0.0
    ws_drop_every_s: float | None = None
    duplicate_notice_rate: float = 0.0
    notice_drop_rate: float = 0.0
    exchange_reject_rate: float = 0.0
    # substrings of request paths the REST faults apply to; None = every /uapi path
    fault_paths: list[str] | None = None
    hold_s: float = 120.0

    @classmethod
    def defaults(cls, config: SimConfig) -> Faults:
        return cls(rate_limit_per_s=config.effective_rate_limit, hold_s=config.fault_hold_s)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; validates everything before changing anything."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise FaultConfigError(f"unknown fault keys: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        staged: dict[str, Any] = {}
        for key, value in changes.items():
            if key in _RATES:
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise FaultConfigError(f"{key} must be a number between 0 and 1")
                staged[key] = float(value)
            elif key in ("rate_limit_per_s", "ws_drop_every_s"):
                if value is None or value == 0:
                    staged[key] = None
                elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise FaultConfigError(f"{key} must be a positive number, 0 or null")
                else:
                    staged[key] = float(value)
            elif key == "fault_paths":
                if value is not None and (
                    not isinstance(value, list) or not all(isinstance(p, str) and p for p in value)
                ):
                    raise FaultConfigError("fault_paths must be a list of non-empty strings or null")
                staged[key] = value
            elif key == "hold_s":
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise FaultConfigError("hold_s must be a positive number")
                staged[key] = float(value)
        for key, value in staged.items():
            setattr(self, key, value)

    def applies_to(self, path: str) -> bool:
        return self.fault_paths is None or any(p in path for p in self.fault_paths)


class RateLimiter:
    """Sliding one-second window of accepted request arrivals, per app key (wall clock)."""

    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = {}

    def allow(self, app_key: str, limit: float | None) -> bool:
        if limit is None:
            return True
        now = time.monotonic()
        window = self._windows.get(app_key)
        if window is None:
            window = self._windows[app_key] = deque()
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(now)
        return True

    def clear(self) -> None:
        self._windows.clear()


class Dice:
    """The fault draws: seeded, so a failing run can be replayed with the same seed."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def hit(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate
