"""The synthetic market's model beyond one symbol's random walk (issue #14, docs/replay.md).

A random walk per symbol with coin-flip prints measures only a strategy's cost drag.  The pieces
here give the day structure a strategy can be right or wrong about:

- a market factor: one index path per (seed, day), computed once and shared by every symbol, on
  which each symbol's log price loads with a beta drawn per symbol (larger for liquid names);
- the intraday U-shape: print rate and walk volatility follow the time of day (busy at the open,
  quiet at lunch, busier into the close), normalised so the day's volume and variance stay as they were;
- spreads of one to a few ticks by tier and time of day, and empty levels (gaps) in thin names;
- regimes per symbol and day (a few per day): momentum, where the drift follows the recent move
  and prints lean with it, and mean reversion, where the price is pulled toward the day's VWAP;
- the price impact of our own orders: square root in the value taken, decaying to a permanent part.

Everything random is drawn from generators seeded by (seed, symbol or market, day, purpose) or
from hashes of them, so none of it depends on when a request happens to advance a symbol.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

# ---------------------------------------------------------------------------------- the U-shape

# The shape's grid: one value per this many seconds of the continuous session.
SHAPE_STEP_S = 10
# activity(τ) for τ the session's elapsed share: a base, the open's burst decaying over its first
# minutes, the run-up into the close and a dip around lunch (12:00-13:00 is τ 0.47-0.63 of 09:00-15:20).
OPEN_BURST = (2.4, 0.035)  # height, decay in session shares (about 13 minutes)
CLOSE_RISE = (1.0, 0.07)
LUNCH_DIP = (0.3, 0.55, 0.07)  # depth, centre, width
BASE_ACTIVITY = 0.75


def _raw_activity(tau: float) -> float:
    h_open, k_open = OPEN_BURST
    h_close, k_close = CLOSE_RISE
    d_lunch, c_lunch, w_lunch = LUNCH_DIP
    return (BASE_ACTIVITY + h_open * math.exp(-tau / k_open) + h_close * math.exp(-(1.0 - tau) / k_close)
            - d_lunch * math.exp(-(((tau - c_lunch) / w_lunch) ** 2)))


@lru_cache(maxsize=8)
def _shape(length_s: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(activity per step, cumulative share at each step's start) for a session of ``length_s``
    seconds, the activity scaled to a mean of 1 so the day's totals do not change."""
    n = max(1, length_s // SHAPE_STEP_S)
    raw = [_raw_activity((i + 0.5) / n) for i in range(n)]
    mean = sum(raw) / n
    act = tuple(r / mean for r in raw)
    cum = [0.0]
    for a in act:
        cum.append(cum[-1] + a / n)
    return act, tuple(cum)


def activity(offset: float, open_s: int, end_s: int) -> float:
    """The print rate's multiplier at ``offset`` seconds after midnight in a continuous session from
    ``open_s`` to ``end_s``; its mean over the session is 1.  Walk variance scales with it too (the
    mixture-of-distributions view: variance follows the number of trades)."""
    if not open_s <= offset < end_s:
        return 1.0
    act, _ = _shape(end_s - open_s)
    return act[min(len(act) - 1, int((offset - open_s) * len(act) / (end_s - open_s)))]


def activity_share(offset: float, open_s: int, end_s: int) -> float:
    """The share of the continuous session's volume traded by ``offset`` (0 before, 1 after)."""
    if offset <= open_s:
        return 0.0
    if offset >= end_s:
        return 1.0
    _, cum = _shape(end_s - open_s)
    n = len(cum) - 1
    pos = (offset - open_s) * n / (end_s - open_s)
    i = min(n - 1, int(pos))
    return cum[i] + (cum[i + 1] - cum[i]) * (pos - i)


# ---------------------------------------------------------------------------------- the factor

FACTOR_STEP_S = 30
FACTOR_DAILY_VOL = 0.010  # the index's intraday volatility of log level
FACTOR_GAP_VOL = 0.004  # its overnight gap, realised over the opening call
# beta ranges by tier, most liquid first: large caps move with the index, thin names much less
BETA_RANGE: tuple[tuple[float, float], ...] = ((0.8, 1.3), (0.6, 1.2), (0.3, 1.0), (0.1, 0.7))


@dataclass(frozen=True, slots=True)
class FactorPath:
    """The day's market index as log level on a grid from the opening call's start to the closing
    call's, 0 at the start; flat before and after."""

    start: int
    step: int
    levels: tuple[float, ...]

    def at(self, offset: float) -> float:
        pos = (offset - self.start) / self.step
        if pos <= 0:
            return self.levels[0]
        i = int(pos)
        if i >= len(self.levels) - 1:
            return self.levels[-1]
        lo = self.levels[i]
        return lo + (self.levels[i + 1] - lo) * (pos - i)


@lru_cache(maxsize=8)
def market_factor(seed: int, day_no: int, open_auction: int, open_s: int, end_s: int) -> FactorPath:
    """One index path per (seed, day): shared by every symbol (cached), drawn from its own generator."""
    rng = random.Random(f"{seed}:market-factor:{day_no}")
    levels = [0.0]
    gap = rng.gauss(0.0, FACTOR_GAP_VOL)
    t = open_auction
    length = end_s - open_s
    while t < end_s:
        t1 = t + FACTOR_STEP_S
        if t1 <= open_s:  # the opening call: the gap, spread evenly
            levels.append(levels[-1] + gap * FACTOR_STEP_S / max(1, open_s - open_auction))
        else:
            var = FACTOR_DAILY_VOL**2 * FACTOR_STEP_S / length * activity(t + FACTOR_STEP_S / 2, open_s, end_s)
            levels.append(levels[-1] + math.sqrt(var) * rng.gauss(0.0, 1.0))
        t = t1
    return FactorPath(open_auction, FACTOR_STEP_S, tuple(levels))


def symbol_beta(seed: int, code: str, tier: int) -> float:
    """The symbol's loading on the market factor, drawn once per symbol (not per day)."""
    lo, hi = BETA_RANGE[min(tier, len(BETA_RANGE) - 1)]
    return random.Random(f"{seed}:{code}:beta").uniform(lo, hi)


# ---------------------------------------------------------------------------------- regimes

RegimeKind = Literal["momentum", "reversion", "neutral"]
# the chance of each kind per regime segment, and up to this many segments a day
REGIME_ODDS: tuple[tuple[RegimeKind, float], ...] = (("momentum", 0.35), ("reversion", 0.35), ("neutral", 0.30))
MAX_REGIMES = 3
# momentum: the drift is PHI times the recent move (an EMA over TAU seconds); the noise is scaled by
# (1 - PHI) ** MOMENTUM_NOISE_POWER: at a power of 1 the day's variance would stay what it was and
# the trend would drown in the factor's moves; at 0.8 a momentum day is 1.2-1.4 times as volatile
# (a trend day) and the day's VI count stays the walk's (17 against 18, docs/replay.md; at 0.75 it was
# 23, at 0.85 9: static VIs are the walk's tails)
MOMENTUM_PHI = (0.55, 0.8)
MOMENTUM_TAU_S = (300.0, 900.0)
MOMENTUM_NOISE_POWER = 0.8
# reversion: the pull's half-life toward the day's VWAP
REVERSION_HALF_LIFE_S = (300.0, 1200.0)
# how far prints lean: the buy share moves up to this much from a half
MOMENTUM_PRINT_LEAN = 0.3
REVERSION_PRINT_LEAN = 0.2
# the old walk's weak pull to the base, kept for the neutral regime and outside the session
BASE_PULL = 0.02


@dataclass(frozen=True, slots=True)
class Regime:
    kind: RegimeKind
    start: float  # seconds after midnight
    strength: float  # momentum: PHI; reversion: the pull rate per second
    tau: float  # momentum: the EMA's time constant; reversion: the half-life


def day_regimes(seed: int, code: str, day_no: int, open_s: int, end_s: int) -> tuple[Regime, ...]:
    """The symbol's regimes for the day, in time order, the first from the open."""
    rng = random.Random(f"{seed}:{code}:{day_no}:regime")
    n = 1 + rng.randrange(MAX_REGIMES)
    starts = [float(open_s), *sorted(rng.uniform(open_s, end_s) for _ in range(n - 1))]
    out: list[Regime] = []
    for start in starts:
        r = rng.random()
        kind: RegimeKind = "neutral"
        for k, p in REGIME_ODDS:
            if r < p:
                kind = k
                break
            r -= p
        if kind == "momentum":
            out.append(Regime(kind, start, rng.uniform(*MOMENTUM_PHI), rng.uniform(*MOMENTUM_TAU_S)))
        elif kind == "reversion":
            half = rng.uniform(*REVERSION_HALF_LIFE_S)
            out.append(Regime(kind, start, math.log(2) / half, half))
        else:
            out.append(Regime(kind, start, 0.0, 0.0))
    return tuple(out)


# ---------------------------------------------------------------------------------- the book

# the chance of each spread in ticks (1, 2, ...) by tier, and the open's widening
SPREAD_ODDS: tuple[tuple[float, ...], ...] = (
    (0.85, 0.15),
    (0.60, 0.30, 0.10),
    (0.40, 0.30, 0.20, 0.10),
    (0.25, 0.25, 0.20, 0.15, 0.15),
)
SPREAD_BUCKET_S = 15  # a spread holds this long
OPEN_WIDE_S = 900  # in the session's first quarter hour a spread is one tick wider half the time
# the chance that a level past the best is empty, by tier
GAP_ODDS: tuple[float, ...] = (0.0, 0.03, 0.15, 0.35)


def spread_ticks(seed: int, code: str, day_no: int, tier: int, offset: float, open_s: int) -> int:
    """The quoted spread in ticks at ``offset``: a seeded draw per 15-second bucket."""
    bucket = int(offset // SPREAD_BUCKET_S)
    h = zlib.crc32(f"{seed}:{code}:{day_no}:{bucket}".encode())
    u = (h & 0xFFFF) / 65536.0
    odds = SPREAD_ODDS[min(tier, len(SPREAD_ODDS) - 1)]
    ticks = len(odds)
    for i, p in enumerate(odds):
        if u < p:
            ticks = i + 1
            break
        u -= p
    if open_s <= offset < open_s + OPEN_WIDE_S and (h >> 16) & 1:
        ticks += 1
    return ticks


def level_gap(tier: int, side: int, price: int, minute: int, day_no: int) -> bool:
    """Whether a level past the best is empty this minute (a cheap hash, as the depth's)."""
    p = GAP_ODDS[min(tier, len(GAP_ODDS) - 1)]
    if p <= 0.0:
        return False
    h = (price * 40503 + side * 2654435761 + minute * 97 + day_no * 7919) & 0xFFFFFF
    return ((h * 2246822519) & 0xFFFFFF) / float(0x1000000) < p


# ---------------------------------------------------------------------------------- impact

# the square-root law: a taken value Q moves the price Y * daily_vol * sqrt(Q / daily value), of
# which PERMANENT stays and the rest decays with the tier's refill time
IMPACT_Y = 1.0
IMPACT_PERMANENT = 0.25
IMPACT_MAX = 0.05


def impact(value: float, daily_value: float, daily_vol: float) -> float:
    """The log-price move of taking ``value`` KRW of liquidity (unsigned)."""
    if value <= 0 or daily_value <= 0:
        return 0.0
    return min(IMPACT_MAX, IMPACT_Y * daily_vol * math.sqrt(value / daily_value))


# ---------------------------------------------------------------------------------- the walk


@dataclass(slots=True)
class Dynamics:
    """One symbol's day beyond its noise: factor loading, regimes, trend and impact state, and the
    walk's own clock (the state's ``t`` is not moved per print)."""

    beta: float
    sigma_s: float  # idiosyncratic volatility per second (of the session's average activity)
    factor: FactorPath
    regimes: tuple[Regime, ...]
    open_s: int
    end_s: int
    day_start: float
    refill_s: float
    t: float = 0.0  # seconds after midnight
    trend: float = 0.0  # EMA of the idiosyncratic log return per second (momentum)
    transient: float = 0.0  # our orders' impact still in the price

    def regime(self, offset: float) -> Regime | None:
        if not self.open_s <= offset < self.end_s:
            return None
        current = self.regimes[0]
        for r in self.regimes:
            if r.start <= offset:
                current = r
        return current

    def step(self, x: float, dt: float, g: float, anchor: float, log_base: float) -> float:
        """``x`` (log fair value) after ``dt`` seconds with ``g`` a standard normal draw; ``anchor``
        is the log VWAP a reverting regime pulls to."""
        t0 = self.t
        t1 = t0 + dt
        self.t = t1
        x += self.beta * (self.factor.at(t1) - self.factor.at(t0))
        r = self.regime(t0)
        pull = -BASE_PULL * (x - log_base) * dt / 23_400.0
        if r is None:
            x += pull + self.sigma_s * math.sqrt(dt) * g
        else:
            noise = self.sigma_s * math.sqrt(dt * activity(t0 + dt / 2, self.open_s, self.end_s)) * g
            if r.kind == "momentum":
                move = r.strength * self.trend * dt + (1.0 - r.strength) ** MOMENTUM_NOISE_POWER * noise
                fade = -math.expm1(-dt / r.tau)  # an EMA of the move per second over tau
                self.trend += fade * (move / dt - self.trend)
                x += move
            elif r.kind == "reversion":
                self.trend = 0.0
                x += (anchor - x) * -math.expm1(-r.strength * dt) + noise
            else:
                self.trend = 0.0
                x += pull + noise
        if self.transient:
            decay = self.transient * -math.expm1(-dt / self.refill_s)
            self.transient -= decay
            x -= decay
        return x

    def buy_share(self, offset: float, x: float, anchor: float) -> float:
        """The chance a crowd print is buy-initiated: a half, leaning with the move under momentum and
        against the distance from VWAP under reversion."""
        r = self.regime(offset)
        if r is None or r.kind == "neutral":
            return 0.5
        if r.kind == "momentum":
            z = self.trend * math.sqrt(2.0 * r.tau) / max(self.sigma_s, 1e-12)
            return 0.5 + MOMENTUM_PRINT_LEAN * math.tanh(z)
        spread = self.sigma_s / math.sqrt(2.0 * r.strength)  # the pull's stationary deviation
        return 0.5 - REVERSION_PRINT_LEAN * math.tanh((x - anchor) / max(spread, 1e-12))

    def push(self, move: float) -> float:
        """Our order's impact ``move`` (signed log): all of it now, the transient part to decay."""
        self.transient += move * (1.0 - IMPACT_PERMANENT)
        return move
