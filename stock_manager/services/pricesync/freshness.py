"""When a price may be called FRESH.

Strategy and Execution act on ``market.prices_best``; a stale price that looks fresh is the worst
failure PriceSync can have.  So a price is FRESH only while its own source vouches for it:

* WS: the session is up, the symbol's registration is acknowledged, the session has heard
  anything at all recently (KIS sends PINGPONG even in a quiet market), and a trade arrived
  within the window.  A quiet symbol turns STALE and REST polling confirms it instead.
* REST: the last successful poll is within the window.
* Any source: data that arrived already older than the window is STALE on arrival.

Windows are in market seconds, because that is how the data is stamped, but never shorter than a
floor or longer than a cap in wall seconds: at 60x a 15 s market window would be a quarter of a
wall second, shorter than one round trip, and at 0.1x it would be minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Source(StrEnum):
    WS = "WS"
    REST = "REST"


class Status(StrEnum):
    FRESH = "FRESH"
    STALE = "STALE"


@dataclass(frozen=True, slots=True)
class Window:
    """A freshness window: ``market_s`` clamped to [floor_wall_s, cap_wall_s] wall seconds."""

    market_s: float
    floor_wall_s: float
    cap_wall_s: float

    def market_seconds(self, speed: float) -> float:
        speed = max(speed, 1e-6)
        return min(max(self.market_s, self.floor_wall_s * speed), self.cap_wall_s * speed)


@dataclass(frozen=True, slots=True)
class FreshnessRules:
    ws: Window = Window(60.0, 3.0, 120.0)
    rest: Window = Window(15.0, 3.0, 120.0)
    # Wall seconds without any message (data, ack or PINGPONG) before the session counts as dead.
    ws_silence_wall_s: float = 45.0

    def window(self, source: Source) -> Window:
        return self.ws if source is Source.WS else self.rest


@dataclass(frozen=True, slots=True)
class WsHealth:
    connected: bool
    active: frozenset[str]  # symbols whose trade registration is acknowledged
    silent_wall_s: float  # wall seconds since the session last heard anything


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    reason: str | None


FRESH = Verdict(Status.FRESH, None)


def judge(
    source: Source,
    symbol: str,
    *,
    data_age_s: float,
    arrival_lag_s: float,
    speed: float,
    rules: FreshnessRules,
    ws: WsHealth | None = None,
) -> Verdict:
    """The verdict for one (symbol, source).

    ``data_age_s`` is market seconds since the data was received (for WS: since the last trade
    print arrived), ``arrival_lag_s`` market seconds between the data's own time and its arrival.
    """
    window = rules.window(source).market_seconds(speed)
    if source is Source.WS:
        if ws is None or not ws.connected:
            return Verdict(Status.STALE, "ws disconnected")
        if symbol not in ws.active:
            return Verdict(Status.STALE, "not subscribed")
        if ws.silent_wall_s > rules.ws_silence_wall_s:
            return Verdict(Status.STALE, f"ws silent {ws.silent_wall_s:.0f}s")
        if data_age_s > window:
            return Verdict(Status.STALE, f"no trade for {data_age_s:.0f}s")
    elif data_age_s > window:
        return Verdict(Status.STALE, f"last poll {data_age_s:.0f}s ago")
    if arrival_lag_s > window:
        return Verdict(Status.STALE, f"arrived {arrival_lag_s:.0f}s late")
    return FRESH


def refresh_due(data_age_s: float, source: Source, speed: float, rules: FreshnessRules, margin: float = 0.5) -> bool:
    """Whether a poll should refresh a symbol now so it does not go stale (``margin`` of the window)."""
    return data_age_s >= rules.window(source).market_seconds(speed) * margin
