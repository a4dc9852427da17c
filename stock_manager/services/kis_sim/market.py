"""One symbol's trading day: price path, synthetic order book, prints, candles and matching.

The state is advanced lazily: nothing happens to a symbol until something (a request, a
subscription, a resting order) asks for it, and then it catches up from where it was to the
market clock's ``now``.  That keeps 2,500 symbols free until touched while still giving every
touched symbol a full day of minute candles.

Price model: a continuous fair value (log price) follows a random walk clamped to the daily
limits; trades print at the best bid or ask derived from it, on the tick grid.  The book is
synthetic: depth per level comes from the liquidity tier, varies by level and minute, and what
user orders take from it comes back over ``TIER_REFILL_S`` seconds.

Matching rules (KRX-like, simplified):
- marketable orders take liquidity at the book's prices, level by level (10 visible levels);
- resting limit orders fill at their own price when the market trades at or through them;
- market orders that find no liquidity wait and keep taking as the book refills;
- 08:30-09:00 and 15:20-15:30 collect orders for one uncross at 09:00 / just after 15:30 at a single
  price: the one that executes the most shares given the users' orders and the crowd's (``clear``);
- the closing uncross happens once, at a moment up to ``CLOSE_UNCROSS_MAX_DELAY_S`` after 15:30
  drawn per seed, day and symbol (KRX's random end), and what is still open then expires;
- 15:40-16:00 (장후 시간외 종가, ORD_DVSN 06) trades at the closing price in time priority against
  a thin stream of crowd orders; 16:00-18:00 (시간외 단일가, ORD_DVSN 07) uncrosses every 10
  minutes within ±10 % of the close.  Neither moves the day's close, high, low or volume.

Everything random about a day's auctions is drawn from a generator seeded by (seed, symbol, day,
purpose), not from the price path's generator: when a request happens to advance the state must
not change when the close happens or how deep the crowd is.
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
from bisect import insort
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol

from stock_manager.shared.calendar import Session
from stock_manager.shared.market_rules import (
    AFTER_HOURS_UNCROSS_EVERY_S,
    CLOSE_UNCROSS_MAX_DELAY_S,
    STATIC_VI_RATE,
    VI_AUCTION_S,
    VI_MAX_RANDOM_END_S,
    Market,
    Phase,
    after_hours_limits,
    dynamic_vi_rate,
    phase_at,
    price_limits,
    round_to_tick,
    session_on,
    tick_size,
    ticks_away,
    vi_trips,
)

from .factors import (
    FACTOR_DAILY_VOL,
    Dynamics,
    activity,
    activity_share,
    day_regimes,
    impact,
    level_gap,
    market_factor,
    spread_ticks,
    symbol_beta,
)
from .listing import NO_DESIGNATION
from .orders import Order
from .universe import TIER_LEVEL_VALUE, TIER_PRINT_RATE, TIER_PRINT_VALUE, TIER_REFILL_S, Symbol

KST_OFFSET_S = 9 * 3600
DAY_S = 86_400
EPOCH = date(1970, 1, 1)
BOOK_LEVELS = 10
# At most this many individual prints per simulated minute-chunk; more are merged (volume kept).
# A symbol nobody watches and nobody has orders in catches up with fewer, coarser prints.
MAX_PRINTS_PER_CHUNK = 12
MAX_COLD_PRINTS_PER_CHUNK = 4
# How many ticks from the quote a side is searched for levels with shares (gaps, levels users took).
BOOK_SCAN = 3 * 10
SESSION_S = 23_400.0
# The walk's daily volatility of log price is capped at the liquid tier's widest.  With the thin
# tiers' own (up to 7.7 %) a day tripped about 160 static VIs across 2,500 names; capped, about ten,
# so a VI is an event a test can provoke (POST /sim/vi) rather than noise in every run.
WALK_MAX_DAILY_VOL = 0.035

PrintSide = Literal[1, 3, 5]  # CCLD_DVSN: 1 buy-initiated (+), 3 the opening call (장전), 5 sell-initiated (-)
BUY_SIDE: PrintSide = 1
OPENING_CALL: PrintSide = 3
SELL_SIDE: PrintSide = 5


def _secs(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


@dataclass(frozen=True)
class DayTimes:
    """One trading day's session boundaries in seconds after KST midnight.

    From the day's ``Session`` in the installed calendar, the one ``phase_at`` reads, so the
    market's own clockwork and the broker's order checks always agree on a holiday or a day with
    other hours (the CSAT day's 10:00-16:30 moves every boundary, the after-hours uncrosses too).
    """

    open_auction: int
    open: int
    close_auction: int
    close: int
    post_close: int
    after_hours: int
    after_hours_end: int
    uncrosses: tuple[int, ...]

    @classmethod
    def of(cls, s: Session) -> DayTimes:
        ah, ah_end = _secs(s.after_hours_start), _secs(s.after_hours_end)
        return cls(_secs(s.open_auction_start), _secs(s.open), _secs(s.closing_auction_start), _secs(s.close),
                   _secs(s.post_close_start), ah, ah_end,
                   tuple(range(ah + AFTER_HOURS_UNCROSS_EVERY_S, ah_end + 1, AFTER_HOURS_UNCROSS_EVERY_S)))


_REGULAR_TIMES = DayTimes.of(Session(date(2000, 1, 3)))


def day_times(day_no: int) -> DayTimes | None:
    """The day's boundaries, or None when the calendar has the market closed all day."""
    s = session_on(day_date(day_no))
    return None if s is None else DayTimes.of(s)

# The crowd in a call auction: its volume at a balanced uncross as a share of the prior day's
# volume, and how far (in daily volatilities of log price) one crowd depth of imbalance moves it.
OPEN_CROWD_SHARE = (0.01, 0.03)
CLOSE_CROWD_SHARE = (0.03, 0.07)
# Crowd orders on each side of the opening call, on average by liquidity tier (Poisson): a thin name
# often has nobody on one side, trades nothing at the open and opens at its first continuous trade.
OPEN_CALL_ORDERS: tuple[float, ...] = (40.0, 10.0, 3.0, 1.0)
CROWD_WIDTH_VOL = 0.5
# After the close the crowd is thin: per side, this share of the day's volume over 15:40-16:00,
# and per 10-minute uncross of 시간외 단일가, whose crowd centre drifts from the close.
POST_CLOSE_CROWD_SHARE = (0.002, 0.01)
POST_CLOSE_ARRIVALS = 40
AFTER_HOURS_CROWD_SHARE = (0.0005, 0.002)
AFTER_HOURS_WIDTH_VOL = 0.3
AFTER_HOURS_DRIFT_VOL = 0.05
# A VI auction's crowd, as a share of the prior day's volume: about what two minutes of the day bring.
VI_CROWD_SHARE = (0.003, 0.008)

ViKind = Literal["static", "dynamic", "both"]
# which single-price auction a VI is: an extended opening call, its own two minutes in the session,
# or an extended closing call
ViCall = Literal["open", "session", "close"]


def day_number(ts: float) -> int:
    """KST calendar day as days since 1970-01-01."""
    return int((ts + KST_OFFSET_S) // DAY_S)


def day_start(day_no: int) -> float:
    return float(day_no * DAY_S - KST_OFFSET_S)


def day_date(day_no: int) -> date:
    return EPOCH + timedelta(days=day_no)


def daily_interest(seed: int, code: str, day_no: int) -> float:
    """How busy a symbol is on a given day relative to its tier (log-normal, mean about 1).

    A pure function of (seed, code, day) so that a volume ranking can estimate untouched
    symbols without simulating them.
    """
    h = zlib.crc32(f"{seed}:{code}:{day_no}".encode()) / 0xFFFFFFFF
    # inverse of a logistic as a cheap stand-in for a normal quantile
    z = math.log(max(h, 1e-9) / max(1 - h, 1e-9)) * 0.55
    return math.exp(0.5 * z - 0.05)


def expected_volume(sym: Symbol, seed: int, ts: float) -> int:
    """Expected cumulative volume at ``ts`` for a symbol that has not been simulated yet."""
    nd = day_number(ts)
    dt = day_times(nd)
    if dt is None or sym.halted:
        return 0
    off = ts - day_start(nd)
    if off < dt.open:
        return 0
    # the continuous session's prints follow the intraday U-shape (factors.activity)
    session = (dt.close_auction - dt.open) * activity_share(off, dt.open, dt.close_auction)
    per_s = TIER_PRINT_RATE[sym.tier] * TIER_PRINT_VALUE[sym.tier] * daily_interest(seed, sym.code, nd)
    volume = per_s * session / sym.prior_close + sym.prior_volume * 0.02
    if off >= dt.close:
        volume += sym.prior_volume * 0.05
    return int(volume)


def hhmmss(ts: float) -> str:
    s = int((ts + KST_OFFSET_S) % DAY_S)
    return f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}"


def day_rng(seed: int, code: str, day_no: int, purpose: str) -> random.Random:
    """A generator for one purpose on one symbol's day, independent of when the state is advanced."""
    return random.Random(f"{seed}:{code}:{day_no}:{purpose}")


def close_uncross_delay(seed: int, code: str, day_no: int) -> float:
    """Seconds after 15:30 at which the closing auction uncrosses (KRX's random end), to the millisecond."""
    return round(day_rng(seed, code, day_no, "close").uniform(0.0, CLOSE_UNCROSS_MAX_DELAY_S), 3)


def opening_call_crowded(seed: int, code: str, tier: int, day_no: int) -> bool:
    """Whether the crowd has orders on both sides of the day's opening call.

    Without, the symbol trades at the open only if users' orders cross each other; otherwise its day
    opens (STCK_OPRC, OPRC_HOUR) at its first continuous trade, which KIS's frames show as opening
    times after 09:00.  Drawn per seed, symbol and day, so it does not depend on when the state is advanced.
    """
    rng = day_rng(seed, code, day_no, "open-call")
    nobody = math.exp(-OPEN_CALL_ORDERS[min(tier, len(OPEN_CALL_ORDERS) - 1)])
    return rng.random() >= nobody and rng.random() >= nobody


def vi_uncross_delay(seed: int, code: str, day_no: int, n: int) -> float:
    """Seconds after its two minutes at which the day's ``n``-th VI auction (from 0) uncrosses (KRX's
    random end), to the millisecond; drawn as the closing uncross's is."""
    return round(day_rng(seed, code, day_no, f"vi-{n}").uniform(0.0, VI_MAX_RANDOM_END_S), 3)


@dataclass(frozen=True, slots=True)
class Interruption:
    """One volatility interruption (변동성완화장치): the trade that did not happen and the auction instead."""

    kind: ViKind
    call: ViCall
    started: float
    ends: float  # when its auction uncrosses (a closing one: the extended close)
    trigger: int  # the price that would have traded
    reference: int  # what it was measured from: the static reference, or the last trade (dynamic)


def _softplus(x: float) -> float:
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


@dataclass(frozen=True, slots=True)
class Crowd:
    """The rest of the market's orders in a call auction, as smooth cumulative curves.

    Buying interest at or above ``p`` is ``depth * softplus(-z)`` and selling interest at or below
    it ``depth * softplus(z)``, with ``z`` the log distance from ``center`` in ``width`` units.  Alone
    the crowd clears at ``center`` with ``depth * ln 2`` shares; since softplus(-z) - softplus(z) = -z,
    an extra ``U`` shares on one side moves the price by ``U / depth`` widths (more buyers appear the
    lower it goes), until a limit of the price grid stops it.
    """

    center: float
    depth: float
    width: float

    def _z(self, price: int) -> float:
        return (math.log(price) - math.log(self.center)) / self.width

    def buy(self, price: int) -> float:
        return self.depth * _softplus(-self._z(price))

    def sell(self, price: int) -> float:
        return self.depth * _softplus(self._z(price))


# A user order as the auction sees it: (limit, quantity), limit None for a market order.
Bid = tuple[int | None, int]


@dataclass(frozen=True, slots=True)
class Cross:
    """The outcome of one uncross: the price, all shares executed, and what each user order got."""

    price: int
    volume: int
    demand: float
    supply: float
    buy_fills: list[int]
    sell_fills: list[int]


def _marketable(limit: int | None, price: int, buy: bool) -> bool:
    return limit is None or (limit >= price if buy else limit <= price)


def _allocate(
    volume: float, users: Sequence[Bid], price: int, crowd_better: float, crowd_at: float, buy: bool
) -> list[int]:
    """Shares each user order on one side gets when ``volume`` executes on that side.

    Price priority first (market orders, then better limits, the crowd's better part alongside);
    what is left goes to orders at exactly ``price``, shared between users and crowd by size, users
    among themselves in time order.  Only at a limit of the grid can even the better part be short;
    it is then shared the same way.
    """
    out = [0] * len(users)
    better = [i for i, (lim, _) in enumerate(users) if lim is None or (lim > price if buy else lim < price)]
    at = [i for i, (lim, _) in enumerate(users) if lim == price]
    user_better = sum(users[i][1] for i in better)
    user_at = sum(users[i][1] for i in at)
    eps = 1e-6
    if volume + eps >= user_better + crowd_better + user_at + crowd_at:
        give_better, give_at = user_better, user_at  # the short side: everything marketable trades
    elif volume + eps >= user_better + crowd_better:
        rest = volume - user_better - crowd_better
        give_better = user_better
        give_at = min(user_at, int(rest * user_at / (user_at + crowd_at) + eps))
    else:
        give_better = min(user_better, int(volume * user_better / (user_better + crowd_better) + eps))
        give_at = 0
    better.sort(key=lambda i: (users[i][0] is not None, -(users[i][0] or 0) if buy else (users[i][0] or 0), i))
    for group, amount in ((better, give_better), (at, give_at)):
        for i in group:
            q = min(users[i][1], amount)
            out[i] = q
            amount -= q
    return out


def clear(grid: Sequence[int], crowd: Crowd, buys: Sequence[Bid], sells: Sequence[Bid], ref: int) -> Cross:
    """Uncross a call auction on ``grid`` (ascending prices): the most shares executed, then the
    smallest imbalance, then the price nearest ``ref``.

    Demand falls and supply rises with the price, so the best price is where they cross: found by
    bisection, which keeps an indicative price cheap enough to publish with every quote.
    """

    def demand(p: int) -> float:
        return crowd.buy(p) + sum(q for lim, q in buys if _marketable(lim, p, True))

    def supply(p: int) -> float:
        return crowd.sell(p) + sum(q for lim, q in sells if _marketable(lim, p, False))

    lo, hi = 0, len(grid)
    while lo < hi:  # first index where demand < supply
        mid = (lo + hi) // 2
        if demand(grid[mid]) >= supply(grid[mid]):
            lo = mid + 1
        else:
            hi = mid
    best: tuple[float, float, int] | None = None
    pick = 0
    for i in (lo - 1, lo):
        if not 0 <= i < len(grid):
            continue
        d, s = demand(grid[i]), supply(grid[i])
        key = (min(d, s), -abs(d - s), -abs(grid[i] - ref))
        if best is None or key > best:
            best, pick = key, i
    price = grid[pick]
    d, s = demand(price), supply(price)
    volume = min(d, s)
    up = grid[pick + 1] if pick + 1 < len(grid) else None
    down = grid[pick - 1] if pick > 0 else None
    crowd_buy_better = crowd.buy(up) if up is not None else 0.0
    crowd_sell_better = crowd.sell(down) if down is not None else 0.0
    buy_fills = _allocate(volume, buys, price, crowd_buy_better, crowd.buy(price) - crowd_buy_better, True)
    sell_fills = _allocate(volume, sells, price, crowd_sell_better, crowd.sell(price) - crowd_sell_better, False)
    executed = max(int(volume), sum(buy_fills), sum(sell_fills))
    return Cross(price, executed, d, s, buy_fills, sell_fills)


def price_grid(lower: int, upper: int, market: Market) -> list[int]:
    """Every valid price from ``lower`` to ``upper`` (both on the tick grid), ascending."""
    out: list[int] = []
    p = lower
    while p <= upper:
        out.append(p)
        p = ticks_away(p, 1, market)
    return out


class FillSink(Protocol):
    """Where executions and end-of-life events of user orders go (the broker)."""

    def on_fill(self, order: Order, qty: int, price: int, ts: float) -> None: ...

    def on_expire(self, order: Order, ts: float) -> None: ...

    def on_ioc_cancel(self, order: Order, ts: float) -> None: ...


@dataclass(slots=True)
class Print:
    ts: float
    price: int
    qty: int
    side: PrintSide


@dataclass(slots=True)
class Candle:
    minute: int  # minutes after KST midnight
    open: int
    high: int
    low: int
    close: int
    volume: int = 0
    value: int = 0
    acml_value: int = 0


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@dataclass(slots=True)
class _Stats:
    last: int
    open: int = 0
    high: int = 0
    low: int = 0
    open_ts: float = 0.0
    high_ts: float = 0.0
    low_ts: float = 0.0
    volume: int = 0
    value: int = 0
    buy_count: int = 0
    sell_count: int = 0
    buy_volume: int = 0
    sell_volume: int = 0
    last_qty: int = 0
    last_side: PrintSide = BUY_SIDE
    last_ts: float = 0.0
    candles: list[Candle] = field(default_factory=list)
    # after the close (장후 시간외 종가, 시간외 단일가): apart from the regular session's figures
    ovtm_volume: int = 0
    ovtm_value: int = 0
    ovtm_last: int = 0


@dataclass(slots=True)
class _Lot:
    """An order waiting at the closing price (장후 시간외): a user's, or the crowd's when ``order`` is None."""

    order: Order | None
    qty: int = 0  # the crowd's shares left; a user's come from the order itself

    @property
    def left(self) -> int:
        if self.order is None:
            return self.qty
        return self.order.remaining if self.order.live else 0


class SymbolState:
    def __init__(self, sym: Symbol, seed: int, now: float, sink: FillSink, *, kospi200: bool = False) -> None:
        self.sym = sym
        self.sink = sink
        self.kospi200 = kospi200  # its dynamic VI band is 3 %, not 6 %
        self.designation = NO_DESIGNATION  # the broker's (it keeps them); 정리매매 and 단기과열 have no VI
        self.rng = random.Random(f"{seed}:{sym.code}")
        self.sigma_s = min(sym.daily_vol, WALK_MAX_DAILY_VOL) / math.sqrt(SESSION_S)
        self.rate = TIER_PRINT_RATE[sym.tier]
        self.day_no = day_number(now)
        self.t = day_start(self.day_no)
        self.base = sym.prior_close
        self.prior_high = sym.prior_high
        self.prior_low = sym.prior_low
        self.prior_volume = sym.prior_volume
        self.seed = seed
        self.interest = daily_interest(seed, sym.code, self.day_no)
        self._set_limits()
        self.x = math.log(self.base) + self.rng.gauss(0, sym.daily_vol * 0.3)
        self._clamp()
        self.stats = _Stats(last=self.base)
        self.consumed: tuple[dict[int, float], dict[int, float]] = ({}, {})  # (asks, bids)
        self.refill_ts = self.t
        self.bids: list[tuple[int, int, Order]] = []
        self.asks: list[tuple[int, int, Order]] = []
        self.takers: deque[Order] = deque()
        self.auction: list[Order] = []
        self._new_day_sessions()
        # set while someone streams this symbol: called for every print (WebSocket H0STCNT0)
        self.print_hook: Callable[[SymbolState, Print], None] | None = None
        self.book_dirty = False

    def _new_day_sessions(self) -> None:
        """The day's closing-call schedule and empty after-the-close books."""
        times = day_times(self.day_no)
        # a closed day still gets regular boundaries to compare against; nothing happens at them
        self.times = times or _REGULAR_TIMES
        self.is_trading_day = times is not None
        dt = self.times
        self.close_offset = dt.close + close_uncross_delay(self.seed, self.sym.code, self.day_no)
        self._bounds = sorted(
            {dt.open_auction, dt.open, dt.close_auction, self.close_offset, dt.post_close, dt.after_hours}
            | set(dt.uncrosses)
            | {DAY_S}
        )
        self.closed = False
        # VI: the static reference (the base until the day's first trade, then the open, then each VI
        # auction's price), the interruption running now, and the day's interruptions so far
        self.static_ref = self.base
        self.vi: Interruption | None = None
        self.vis: list[Interruption] = []
        self._vi_end_offset: float | None = None
        # the day's close and the 시간외 단일가 band around it, set by the closing uncross
        self.close_price = self.base
        self.ah_lower, self.ah_upper = self.lower, self.upper
        # 장후 시간외 종가: crowd arrivals (ts, side 0 buy / 1 sell, qty) and the two time-priority queues
        self.post_arrivals: list[tuple[float, int, int]] = []
        self.post_next = 0
        self.post_queues: tuple[deque[_Lot], deque[_Lot]] = (deque(), deque())
        # 시간외 단일가: the orders waiting for the next uncross and each uncross's crowd (centre, depth)
        self.ah_book: list[Order] = []
        self.ah_crowds: list[tuple[float, float]] = []
        self.model = self._day_model()

    def _day_model(self) -> Dynamics:
        """The day's factor loading, regimes and impact state (factors.py).  The walk's variance is
        split so that the factor's share plus the symbol's own add up to what the walk had alone."""
        dt, sym = self.times, self.sym
        beta = symbol_beta(self.seed, sym.code, sym.tier)
        total = min(sym.daily_vol, WALK_MAX_DAILY_VOL)
        own = math.sqrt(max(total**2 - (beta * FACTOR_DAILY_VOL) ** 2, 0.25 * total**2))
        return Dynamics(
            beta=beta,
            sigma_s=own / math.sqrt(SESSION_S),
            factor=market_factor(self.seed, self.day_no, dt.open_auction, dt.open, dt.close_auction),
            regimes=day_regimes(self.seed, sym.code, self.day_no, dt.open, dt.close_auction),
            open_s=dt.open,
            end_s=dt.close_auction,
            day_start=day_start(self.day_no),
            refill_s=TIER_REFILL_S[sym.tier],
            t=self.t - day_start(self.day_no),
        )

    def daily_value(self) -> float:
        """The value the crowd trades in the day's continuous session (KRW): the impact's scale."""
        dt = self.times
        return TIER_PRINT_RATE[self.sym.tier] * TIER_PRINT_VALUE[self.sym.tier] * self.interest * (
            dt.close_auction - dt.open)

    # ------------------------------------------------------------------ time

    @property
    def trade_date(self) -> date:
        return day_date(self.day_no)

    @property
    def trading_day(self) -> bool:
        """The calendar's word on the state's day (weekends, holidays, the operator's closed days)."""
        return self.is_trading_day

    def phase(self) -> Phase:
        """Phase at the state's own time (it has been advanced to the clock before use).

        The broker checks orders against ``phase_at`` of the clock; asking the same function keeps
        the two from ever disagreeing about a window.
        """
        return phase_at(datetime.fromtimestamp(self.t, UTC))

    def in_call(self) -> bool:
        """Whether a call auction is collecting orders or waiting to uncross (pre-open, or from 15:20
        until the closing uncross, which comes up to 30 s after 15:30)."""
        if not self.trading_day or self.sym.halted:
            return False
        off = self.t - day_start(self.day_no)
        dt = self.times
        return dt.open_auction <= off < dt.open or (off >= dt.close_auction and not self.closed)

    def in_auction(self) -> bool:
        """A scheduled call or a VI auction: orders collect and nothing trades until it uncrosses."""
        return self.in_call() or self.vi is not None

    def advance(self, now: float) -> None:
        nd = day_number(now)
        if nd < self.day_no:  # the clock was set back to an earlier day
            self._roll(nd)
        elif now <= self.t:
            return
        elif nd > self.day_no:
            self._run_until(min(now, day_start(self.day_no) + DAY_S))
            self._roll(nd)
        self._run_until(now)

    def _roll(self, nd: int) -> None:
        ts = day_start(nd)
        for o in self._all_open_orders():
            self.sink.on_expire(o, ts)
        self.bids.clear()
        self.asks.clear()
        self.takers.clear()
        self.auction.clear()
        st = self.stats
        if st.volume:
            self.base = st.last
            self.prior_high, self.prior_low, self.prior_volume = st.high, st.low, st.volume
        self.day_no = nd
        self.interest = daily_interest(self.seed, self.sym.code, nd)
        self._set_limits()
        self.x = math.log(self.base) + self.rng.gauss(0, self.sym.daily_vol * 0.3)
        self._clamp()
        self.stats = _Stats(last=self.base)
        self.consumed = ({}, {})
        self.t = ts
        self.refill_ts = ts
        self._new_day_sessions()

    def _run_until(self, end: float) -> None:
        start = day_start(self.day_no)
        while self.t < end:
            off = self.t - start
            # compared as absolute times: with a fractional offset (the closing uncross),
            # (start + offset) - start need not give the offset back exactly
            nxt = next(b for b in self._bounds if start + b > self.t)
            seg_end = min(end, start + nxt)
            dt = self.times
            self.model.t = off  # the walk's clock, moved per print within the segment
            if self.trading_day and not self.sym.halted:
                if dt.open <= off < dt.close_auction and self.vi is not None:
                    self._walk(seg_end - self.t)
                elif dt.open <= off < dt.close_auction:
                    stopped = self._continuous(self.t, seg_end)
                    if stopped is not None:  # a VI began there: its auction runs from then on
                        self.t = stopped
                        continue
                elif dt.open_auction <= off < self.close_offset:
                    self._walk(seg_end - self.t)
                elif dt.post_close <= off < dt.after_hours:
                    self._post_close_until(seg_end)
            self.t = seg_end
            if seg_end == start + nxt and self.trading_day and not self.sym.halted:
                self._boundary(nxt, seg_end)

    def _boundary(self, offset: float, ts: float) -> None:
        dt = self.times
        if offset == self._vi_end_offset:
            self._vi_end_offset = None
            self._end_vi(ts)
        if offset == dt.open:
            if not self._opening_vi(ts):
                self._uncross(ts, closing=False)
        elif offset == dt.close_auction:
            # the closing call collects everything still open (a VI auction still running joins it);
            # 조건부지정가 turns into market
            self.vi = None
            self._vi_end_offset = None
            orders = self._all_open_orders()
            for o in orders:
                if o.ord_dvsn == "02":
                    o.aggressive = True
            self.auction = orders
            self.bids.clear()
            self.asks.clear()
            self.takers.clear()
        elif offset == self.close_offset and self._closing_vi(ts):
            pass  # the closing call goes on for two minutes more
        elif offset == self.close_offset:
            leftovers = self._all_open_orders()
            self.vi = None
            self._uncross(ts, closing=True)
            for o in leftovers:
                if o.live:
                    self.sink.on_expire(o, ts)
            self.bids.clear()
            self.asks.clear()
            self.takers.clear()
            self.auction.clear()
        elif offset == dt.post_close:
            self._open_post_close(ts)
        elif offset == dt.after_hours:
            for queue in self.post_queues:
                for lot in queue:
                    if lot.order is not None and lot.order.live:
                        self.sink.on_expire(lot.order, ts)
                queue.clear()
            self._open_after_hours()
        if offset in dt.uncrosses:
            self._after_hours_uncross(dt.uncrosses.index(int(offset)), ts)

    def _all_open_orders(self) -> list[Order]:
        seen: list[Order] = []
        for _, _, o in self.bids:
            if o.live:
                seen.append(o)
        for _, _, o in self.asks:
            if o.live:
                seen.append(o)
        seen.extend(o for o in self.takers if o.live)
        seen.extend(o for o in self.auction if o.live)
        for queue in self.post_queues:
            seen.extend(lot.order for lot in queue if lot.order is not None and lot.order.live)
        seen.extend(o for o in self.ah_book if o.live)
        # a taker may also sit in a heap after an uncross; keep each once
        unique: dict[int, Order] = {o.seq: o for o in seen}
        return sorted(unique.values(), key=lambda o: o.seq)

    # ------------------------------------------------------------------ price path

    def _set_limits(self) -> None:
        self.lower, self.upper = price_limits(self.base, self.sym.market)
        self._grid: list[int] = []
        self._log_lower, self._log_upper = math.log(self.lower), math.log(self.upper)
        self._log_base = math.log(self.base)

    def _clamp(self) -> None:
        if self.x < self._log_lower:
            self.x = self._log_lower
        elif self.x > self._log_upper:
            self.x = self._log_upper

    def _walk(self, dt: float) -> None:
        if dt <= 0:
            return
        self.x = self.model.step(self.x, dt, self.rng.gauss(0.0, 1.0), self._anchor(), self._log_base)
        self._clamp()

    def _anchor(self) -> float:
        """What a reverting regime pulls toward: the day's VWAP so far, else the open, else the base."""
        st = self.stats
        if st.volume:
            return math.log(st.value / st.volume)
        return math.log(st.open) if st.open else self._log_base

    def _impact(self, side: int, value: float) -> None:
        """Our order took ``value`` KRW of liquidity (side 0 bought): the fair value moves with it."""
        move = impact(value, self.daily_value(), min(self.sym.daily_vol, WALK_MAX_DAILY_VOL))
        if move:
            self.x += self.model.push(move if side == 0 else -move)
            self._clamp()
            self.book_dirty = True

    def fair(self) -> int:
        """The fair value on the tick grid: the indicative auction price."""
        p = round_to_tick(round(math.exp(self.x)), self.sym.market)
        return min(max(p, self.lower), self.upper)

    def _quote(self) -> tuple[int | None, int | None]:
        """Where the crowd's asks and bids start (before what users took): around the fair value, a
        spread of ``spread_ticks`` apart; None when the fair value is at that side's limit."""
        m = math.exp(self.x)
        market = self.sym.market
        ask = round_to_tick(int(m) + 1, market, up=True)
        if ask > self.upper:
            return None, self.upper
        bid = ask - tick_size(ask - 1, market)
        if bid < self.lower:
            return self.lower, None
        wide = spread_ticks(self.seed, self.sym.code, self.day_no, self.sym.tier, self.model.t, self.times.open) - 1
        if wide:
            up = wide // 2 + (wide % 2 if bid % 2 else 0)
            ask = min(ticks_away(ask, up, market), self.upper) if up else ask
            bid = max(ticks_away(bid, -(wide - up), market), self.lower) if wide > up else bid
        return ask, bid

    def best(self) -> tuple[int | None, int | None]:
        """(best ask, best bid) of the external book: each side's first level with shares (levels past
        the quote may be gaps, and users take levels out); None when that side shows nothing."""
        ask, bid = self._quote()
        return self._first(0, ask), self._first(1, bid)

    def _first(self, side: int, start: int | None) -> int | None:
        if start is None or self.sym.halted:
            return None
        for price, _ in self._scan(side, start, 1):
            return price
        return None

    def _scan(self, side: int, start: int, n: int) -> list[tuple[int, int]]:
        """The first ``n`` levels with shares from ``start`` outward, within ``BOOK_SCAN`` ticks."""
        out: list[tuple[int, int]] = []
        p = start
        step = 1 if side == 0 else -1
        for i in range(BOOK_SCAN):
            if p > self.upper or p < self.lower or p <= 0:
                break
            q = self._avail(side, p, i)
            if q > 0:
                out.append((p, q))
                if len(out) >= n:
                    break
            p = ticks_away(p, step, self.sym.market)
        return out

    def _base_depth(self, price: int) -> float:
        return max(1.0, TIER_LEVEL_VALUE[self.sym.tier] / price)

    def _depth(self, side: int, price: int, level: int) -> int:
        """Shares shown at ``price`` (side 0 asks, 1 bids) before user consumption."""
        minute = int((self.t - day_start(self.day_no)) // 60)
        if level and level_gap(self.sym.tier, side, price, minute, self.day_no):
            return 0
        h = (price * 2654435761 + side * 97 + minute * 40503 + self.day_no) & 0xFFFF
        factor = 0.4 + 1.2 * h / 65536.0
        if level == 0:
            factor *= 0.6
        return max(1, int(self._base_depth(price) * factor))

    def _avail(self, side: int, price: int, level: int) -> int:
        return max(0, self._depth(side, price, level) - int(self.consumed[side].get(price, 0.0)))

    def _consume(self, side: int, price: int, qty: int) -> None:
        book = self.consumed[side]
        book[price] = book.get(price, 0.0) + qty

    def _refill(self, ts: float) -> None:
        dt = ts - self.refill_ts
        self.refill_ts = ts
        if dt <= 0:
            return
        refill_s = TIER_REFILL_S[self.sym.tier]
        for book in self.consumed:
            if not book:
                continue
            for price in list(book):
                left = book[price] - self._base_depth(price) * dt / refill_s
                if left <= 0:
                    del book[price]
                else:
                    book[price] = left

    def levels(self, side: int, n: int = BOOK_LEVELS) -> list[tuple[int, int]]:
        """Up to ``n`` (price, qty) levels of the visible book, best first; only levels with shares
        (as KRX shows a book: the ten best prices that have orders), so the first is ``best()``'s."""
        ask, bid = self._quote()
        start = ask if side == 0 else bid
        if start is None or self.sym.halted:
            return []
        return self._scan(side, start, n)

    # ------------------------------------------------------------------ prints

    def _record(self, price: int, qty: int, side: PrintSide, ts: float) -> None:
        st = self.stats
        st.last = price
        if not st.open:
            st.open, st.high, st.low = price, price, price
            self.static_ref = price  # the open is the static VI reference
            st.open_ts = st.high_ts = st.low_ts = ts
        if price > st.high:
            st.high, st.high_ts = price, ts
        if price < st.low:
            st.low, st.low_ts = price, ts
        st.volume += qty
        st.value += price * qty
        # the opening call's shares count on neither side: on KIS's frames the buy- and sell-initiated
        # totals (SHNU/SELN_CNTG_SMTN) add up to less than the day's volume
        if side == BUY_SIDE:
            st.buy_count += 1
            st.buy_volume += qty
        elif side == SELL_SIDE:
            st.sell_count += 1
            st.sell_volume += qty
        st.last_qty, st.last_side, st.last_ts = qty, side, ts
        minute = int((ts - day_start(self.day_no)) // 60)
        candles = st.candles
        if candles and candles[-1].minute == minute:
            c = candles[-1]
            c.high = max(c.high, price)
            c.low = min(c.low, price)
            c.close = price
        else:
            c = Candle(minute, price, price, price, price)
            candles.append(c)
        c.volume += qty
        c.value += price * qty
        c.acml_value = st.value
        if self.print_hook is not None:
            self.print_hook(self, Print(ts, price, qty, side))
        self.book_dirty = True

    def _continuous(self, t0: float, t1: float) -> float | None:
        """Continuous trading from ``t0`` to ``t1``; the moment a VI stopped it, if one did."""
        start = day_start(self.day_no)
        t = t0
        rng = self.rng
        print_value = TIER_PRINT_VALUE[self.sym.tier]
        while t < t1:
            m_end = min(t1, start + (int((t - start) // 60) + 1) * 60)
            dt = m_end - t
            busyness = activity((t + m_end) / 2 - start, self.times.open, self.times.close_auction)
            n = _poisson(rng, self.rate * self.interest * busyness * dt)
            busy = self.print_hook is not None or bool(self.bids or self.asks or self.takers)
            cap = MAX_PRINTS_PER_CHUNK if busy else MAX_COLD_PRINTS_PER_CHUNK
            scale = 1.0
            if n > cap:
                scale, n = n / cap, cap
            last = t
            for ti in sorted(t + dt * rng.random() for _ in range(n)):
                self._walk(ti - last)
                last = ti
                value = print_value * rng.expovariate(1.0) * scale
                if busy:
                    self._refill(ti)
                lean = self.model.buy_share(ti - start, self.x, self._anchor())
                self._external_print(BUY_SIDE if rng.random() < lean else SELL_SIDE, value, ti)
                if busy:
                    self._match(ti)
                if self.vi is not None:
                    return ti
            self._walk(m_end - last)
            if busy or self.consumed[0] or self.consumed[1]:
                self._refill(m_end)
                self._match(m_end)
                if self.vi is not None:
                    return m_end
            else:
                self.refill_ts = m_end
            t = m_end
        return None

    def _external_print(self, side: PrintSide, value: float, ts: float) -> None:
        ask, bid = self.best()
        if side == BUY_SIDE and ask is None:
            side = SELL_SIDE
        elif side == SELL_SIDE and bid is None:
            side = BUY_SIDE
        price = ask if side == BUY_SIDE else bid
        if price is None:
            return
        size = max(1, int(value / price))
        # resting user orders on the other side are hit first, at their own price
        heap = self.asks if side == BUY_SIDE else self.bids
        while size > 0 and heap:
            key, _, o = heap[0]
            if not o.live:
                heapq.heappop(heap)
                continue
            limit = key if side == BUY_SIDE else -key
            if (side == BUY_SIDE and limit > price) or (side == SELL_SIDE and limit < price):
                break
            if self._interrupts(limit, ts):
                return
            q = min(size, o.remaining)
            self._fill(o, q, limit, ts, side)
            size -= q
        if size > 0 and not self._interrupts(price, ts):
            self._record(price, size, side, ts)

    def _fill(self, o: Order, qty: int, price: int, ts: float, side: PrintSide) -> None:
        self._record(price, qty, side, ts)
        self.sink.on_fill(o, qty, price, ts)

    # ------------------------------------------------------------------ user orders

    def submit(self, o: Order, ts: float) -> None:
        """Enter an accepted order; the caller has advanced the state to ``ts``."""
        phase = self.phase()
        if phase in (Phase.PRE_OPEN, Phase.CLOSING_AUCTION) or self.vi is not None:
            self.auction.append(o)  # a market order joins as a market order (limit None in the cross)
            self.book_dirty = True  # the indicative price moves with the orders
            return
        if phase is Phase.POST_CLOSE:
            self._post_match(_Lot(o), 0 if o.side == "BUY" else 1, ts)
            return
        if phase is Phase.AFTER_HOURS:
            self.ah_book.append(o)
            self.book_dirty = True
            return
        ask, bid = self.best()
        if o.ord_dvsn in ("03", "15", "16"):  # 최유리: the best opposite price
            best = ask if o.side == "BUY" else bid
            o.limit = best if best is not None else (self.upper if o.side == "BUY" else self.lower)
        elif o.ord_dvsn == "04":  # 최우선: the best price on the order's own side
            own = bid if o.side == "BUY" else ask
            o.limit = own if own is not None else (self.upper if o.side == "BUY" else self.lower)
        if o.cond == "2" and self._available(o) < o.remaining:
            self.sink.on_ioc_cancel(o, ts)
            return
        self._take(o, ts)
        if o.remaining <= 0 or o.dead:
            return
        if o.cond != "0":
            self.sink.on_ioc_cancel(o, ts)
        elif self.vi is not None:  # it started a VI: what is left joins the auction
            self.auction.append(o)
            self.book_dirty = True
        elif o.aggressive:
            self.takers.append(o)
        else:
            self._rest(o)

    def _rest(self, o: Order) -> None:
        if o.side == "BUY":
            heapq.heappush(self.bids, (-o.limit, o.seq, o))
        else:
            heapq.heappush(self.asks, (o.limit, o.seq, o))
        self.book_dirty = True

    def _available(self, o: Order) -> int:
        side = 0 if o.side == "BUY" else 1
        total = 0
        last = self.stats.last
        for price, qty in self.levels(side):
            if not o.aggressive and ((side == 0 and price > o.limit) or (side == 1 and price < o.limit)):
                break
            if self._vi_kind(price, last) is not None:  # the order would stop there, in a VI
                break
            total += qty
        return total

    def _take(self, o: Order, ts: float) -> None:
        """Take liquidity at the book's prices, up to the order's limit unless it is a market order;
        what was taken moves the fair value (``_impact``)."""
        side = 0 if o.side == "BUY" else 1
        taken = self._sweep(o, side, ts)
        if taken:
            self._impact(side, taken)

    def _sweep(self, o: Order, side: int, ts: float) -> int:
        """The levels ``_take`` fills ``o`` from; the value (KRW) taken."""
        print_side = BUY_SIDE if side == 0 else SELL_SIDE
        last = self.stats.last  # a sweep's dynamic VI is measured from the trade before the order
        taken = 0
        for price, qty in self.levels(side):
            if o.remaining <= 0 or o.dead or self.vi is not None:
                break
            if not o.aggressive and ((side == 0 and price > o.limit) or (side == 1 and price < o.limit)):
                break
            q = min(qty, o.remaining)
            if q <= 0:
                continue
            if self._interrupts(price, ts, last):
                break
            self._consume(side, price, q)
            self._fill(o, q, price, ts, print_side)
            taken += q * price
        return taken

    def _match(self, ts: float) -> None:
        """Fill what the market now reaches: waiting market orders, then crossed limit orders."""
        if self.vi is not None:
            return
        if self.takers:
            for o in list(self.takers):
                if o.live:
                    self._take(o, ts)
            while self.takers and not self.takers[0].live:
                self.takers.popleft()
            self.takers = deque(o for o in self.takers if o.live)
        ask, bid = self.best()
        for side, heap in ((0, self.bids), (1, self.asks)):
            while heap:
                key, _, o = heap[0]
                if not o.live:
                    heapq.heappop(heap)
                    continue
                limit = -key if side == 0 else key
                # the common case: the best resting order does not reach the other side
                if (side == 0 and (ask is None or limit < ask)) or (side == 1 and (bid is None or limit > bid)):
                    break
                got = False
                for price, qty in self.levels(side):
                    if (side == 0 and price > limit) or (side == 1 and price < limit):
                        break
                    q = min(qty, o.remaining)
                    if q <= 0:
                        continue
                    if self._interrupts(limit, ts):
                        return
                    self._consume(side, price, q)
                    # a resting order trades at its own price; the counterparty is the aggressor
                    self._fill(o, q, limit, ts, SELL_SIDE if side == 0 else BUY_SIDE)
                    got = True
                    if o.remaining <= 0:
                        break
                if not got:
                    break

    def remove(self, o: Order) -> None:
        """Take an order out of the book (cancel / modify); heaps and queues drop it lazily."""
        o.dead = True
        if o in self.auction:
            self.auction.remove(o)
        if o in self.ah_book:
            self.ah_book.remove(o)
        self.book_dirty = True

    # ------------------------------------------------------------------ call auctions

    def grid(self) -> list[int]:
        """Every price inside today's daily limits (built on first need, once a day)."""
        if not self._grid:
            self._grid = price_grid(self.lower, self.upper, self.sym.market)
        return self._grid

    def _call_crowd(self, closing: bool) -> Crowd:
        """The crowd of the opening or closing call: centred on the fair value, as deep as a share of
        yesterday's volume drawn once per day (so the indicative price and the uncross agree)."""
        share = CLOSE_CROWD_SHARE if closing else OPEN_CROWD_SHARE
        rng = day_rng(self.seed, self.sym.code, self.day_no, "close-crowd" if closing else "open-crowd")
        depth = max(1, self.prior_volume) * rng.uniform(*share) / math.log(2)
        if not closing and not opening_call_crowded(self.seed, self.sym.code, self.sym.tier, self.day_no):
            depth = 0.0
        return Crowd(math.exp(self.x), depth, self.sym.daily_vol * CROWD_WIDTH_VOL)

    @staticmethod
    def _cross(orders: list[Order], grid: list[int], crowd: Crowd, ref: int) -> tuple[Cross, list[Order], list[Order]]:
        buys = [o for o in orders if o.live and o.side == "BUY"]
        sells = [o for o in orders if o.live and o.side == "SELL"]

        def bids(side: list[Order]) -> list[Bid]:
            return [(None if o.aggressive else o.limit, o.remaining) for o in side]

        return clear(grid, crowd, bids(buys), bids(sells), ref), buys, sells

    def _execute(self, result: Cross, buys: list[Order], sells: list[Order], ts: float) -> None:
        for orders, fills in ((buys, result.buy_fills), (sells, result.sell_fills)):
            for o, q in zip(orders, fills, strict=True):
                if q > 0:
                    self.sink.on_fill(o, q, result.price, ts)

    def indicative(self) -> Cross | None:
        """What the running call or VI auction would uncross at now (KRX's 예상체결가), or None outside one."""
        crowd = self._auction_crowd()
        if crowd is None:
            return None
        cross = self._cross(self.auction, self.grid(), crowd, self.fair())[0]
        return cross if cross.volume else None  # nothing would trade: no indicative price

    def _auction_crowd(self) -> Crowd | None:
        """The crowd of the single-price auction running now; None in continuous trading."""
        if self.vi is not None and self.vi.call == "session":
            return self._vi_crowd(len(self.vis) - 1)
        if self.vi is not None and self.vi.call == "open":
            return self._call_crowd(False)
        if not self.in_call():
            return None
        return self._call_crowd(self.t - day_start(self.day_no) >= self.times.close_auction)

    def _uncross(self, ts: float, *, closing: bool, crowd: Crowd | None = None) -> None:
        """The opening or closing call's uncross, or with ``crowd`` a VI auction's, whose price becomes
        the static reference."""
        orders = [o for o in self.auction if o.live]
        self.auction = []
        result, buys, sells = self._cross(orders, self.grid(), crowd or self._call_crowd(closing), self.fair())
        self._execute(result, buys, sells, ts)
        opening = not closing and crowd is None
        side = OPENING_CALL if opening else BUY_SIDE if result.demand >= result.supply else SELL_SIDE
        if crowd is not None:  # before the print, whose frame carries it (VI_STND_PRC)
            self.static_ref = result.price
        if closing or result.volume:
            # an opening call that trades nothing prints nothing: the first continuous trade is the open
            self._record(result.price, max(1, result.volume), side, ts)
        if closing:
            self.closed = True
            self.close_price = result.price
            self.ah_lower, self.ah_upper = after_hours_limits(result.price, self.base, self.sym.market)
            return
        for o in orders:
            if not o.live:
                continue
            if o.aggressive:
                self.takers.append(o)
            else:
                self._rest(o)
        self._match(ts)

    # ------------------------------------------------------------------ volatility interruptions

    def _vi_kind(self, price: int, last: int, *, closing: bool = False) -> ViKind | None:
        """Which VI a trade at ``price`` would start; ``last`` is the trade a dynamic VI is measured from."""
        if self.designation.vi_exempt:
            return None
        static = vi_trips(price, self.static_ref, STATIC_VI_RATE)
        dynamic = vi_trips(price, last, dynamic_vi_rate(self.kospi200, closing=closing))
        if static:
            return "both" if dynamic else "static"
        return "dynamic" if dynamic else None

    def _interrupts(self, price: int, ts: float, last: int | None = None) -> bool:
        """Whether a trade at ``price`` now trips a VI; if so the VI starts and the trade does not happen."""
        last = self.stats.last if last is None else last
        kind = self._vi_kind(price, last)
        if kind is None:
            return False
        self._start_vi(kind, "session", price, last if kind == "dynamic" else self.static_ref, ts)
        return True

    def _start_vi(self, kind: ViKind, call: ViCall, trigger: int, reference: int, ts: float) -> Interruption:
        """Two minutes of single-price auction plus the random end.  In the session what rests in the
        book stays and joins the auction, as do market orders waiting for liquidity; an extended call
        keeps the orders it has."""
        start = day_start(self.day_no)
        delay = vi_uncross_delay(self.seed, self.sym.code, self.day_no, len(self.vis))
        offset = round(ts - start + VI_AUCTION_S + delay, 3)
        vi = Interruption(kind, call, ts, start + offset, trigger, reference)
        self.vi = vi
        self.vis.append(vi)
        insort(self._bounds, offset)
        if call == "close":
            self.close_offset = offset
        else:
            self._vi_end_offset = offset
        if call == "session":
            self.auction = self._all_open_orders()
            self.bids.clear()
            self.asks.clear()
            self.takers.clear()
        self.book_dirty = True
        return vi

    def _end_vi(self, ts: float) -> None:
        """The VI auction uncrosses and continuous trading resumes."""
        vi = self.vi
        if vi is None or vi.call == "close":
            return
        self.vi = None
        if vi.call == "open":
            self._uncross(ts, closing=False)  # the open, late
        else:
            self._uncross(ts, closing=False, crowd=self._vi_crowd(len(self.vis) - 1))

    def _vi_crowd(self, n: int) -> Crowd:
        """The crowd of the day's ``n``-th VI auction: centred on the fair value, as deep as a share of
        yesterday's volume drawn per VI (so the indicative price and the uncross agree)."""
        rng = day_rng(self.seed, self.sym.code, self.day_no, f"vi-crowd-{n}")
        depth = max(1, self.prior_volume) * rng.uniform(*VI_CROWD_SHARE) / math.log(2)
        return Crowd(math.exp(self.x), depth, self.sym.daily_vol * CROWD_WIDTH_VOL)

    def _opening_vi(self, ts: float) -> bool:
        """At the open: whether the opening price would be 10 % or more from the static reference (the
        base), a static VI that extends the opening call.  No dynamic VI applies to the open."""
        cross = self._cross(self.auction, self.grid(), self._call_crowd(False), self.fair())[0]
        if not cross.volume or self.designation.vi_exempt or not vi_trips(cross.price, self.static_ref, STATIC_VI_RATE):
            return False
        self._start_vi("static", "open", cross.price, self.static_ref, ts)
        return True

    def _closing_vi(self, ts: float) -> bool:
        """When the closing call would uncross: whether its price trips a VI (static, or 2 % / 4 % from
        the last trade), which extends the call, once."""
        if self.vi is not None:
            return False
        cross = self.indicative()
        last = self.stats.last
        kind = None if cross is None else self._vi_kind(cross.price, last, closing=True)
        if cross is None or kind is None:
            return False
        self._start_vi(kind, "close", cross.price, last if kind == "dynamic" else self.static_ref, ts)
        return True

    def force_vi(self, kind: Literal["static", "dynamic"], ts: float) -> Interruption | None:
        """Start a VI now at the last price, as if a trade had tripped it (the control API's, for tests);
        None outside continuous trading or when one is already running.  The caller has advanced the
        state to ``ts``."""
        off = self.t - day_start(self.day_no)
        if not self.trading_day or self.sym.halted or self.vi is not None:
            return None
        if not self.times.open <= off < self.times.close_auction:
            return None
        last = self.stats.last
        return self._start_vi(kind, "session", last, self.static_ref if kind == "static" else last, ts)

    # ------------------------------------------------------------------ after the close

    def _record_off_hours(self, price: int, qty: int) -> None:
        """After-the-close trades count apart: the day's close, range and volume stay the regular session's."""
        st = self.stats
        st.ovtm_volume += qty
        st.ovtm_value += price * qty
        st.ovtm_last = price
        self.book_dirty = True

    def _open_post_close(self, ts: float) -> None:
        """Draw the crowd's orders at the closing price for 15:40-16:00: a small share of the day's volume
        per side, in a few dozen orders at random moments."""
        rng = day_rng(self.seed, self.sym.code, self.day_no, "post-close")
        span = self.times.after_hours - self.times.post_close
        arrivals: list[tuple[float, int, int]] = []
        for side in (0, 1):
            total = int(self.stats.volume * rng.uniform(*POST_CLOSE_CROWD_SHARE))
            n = min(POST_CLOSE_ARRIVALS, total)
            if n <= 0:
                continue
            weights = [rng.expovariate(1.0) for _ in range(n)]
            scale = total / sum(weights)
            arrivals.extend((ts + rng.random() * span, side, max(1, round(w * scale))) for w in weights)
        arrivals.sort()
        self.post_arrivals = arrivals
        self.post_next = 0

    def _post_close_until(self, end: float) -> None:
        arrivals = self.post_arrivals
        while self.post_next < len(arrivals) and arrivals[self.post_next][0] <= end:
            ts, side, qty = arrivals[self.post_next]
            self.post_next += 1
            self._post_match(_Lot(None, qty), side, ts)

    def _post_match(self, lot: _Lot, side: int, ts: float) -> None:
        """Trade an arriving order (side 0 buy, 1 sell) at the closing price against the other side's
        queue, oldest first (price is fixed, so time alone decides); what is left waits its turn."""
        other = self.post_queues[1 - side]
        while lot.left > 0 and other:
            head = other[0]
            q = min(lot.left, head.left)
            if q <= 0:
                other.popleft()
                continue
            for part in (lot, head):
                if part.order is None:
                    part.qty -= q
                else:
                    self.sink.on_fill(part.order, q, self.close_price, ts)
            self._record_off_hours(self.close_price, q)
        if lot.left > 0:
            self.post_queues[side].append(lot)
            self.book_dirty = True

    def _open_after_hours(self) -> None:
        """Each 10-minute uncross's crowd for 16:00-18:00: thin, centred on a slow walk from the close."""
        rng = day_rng(self.seed, self.sym.code, self.day_no, "after-hours")
        log_c = math.log(self.close_price)
        lo, hi = math.log(self.ah_lower), math.log(self.ah_upper)
        self.ah_crowds = []
        for _ in self.times.uncrosses:
            log_c = min(max(log_c + rng.gauss(0.0, self.sym.daily_vol * AFTER_HOURS_DRIFT_VOL), lo), hi)
            depth = max(1, self.stats.volume) * rng.uniform(*AFTER_HOURS_CROWD_SHARE) / math.log(2)
            self.ah_crowds.append((math.exp(log_c), depth))

    def _after_hours_uncross(self, k: int, ts: float) -> None:
        center, depth = self.ah_crowds[k]
        crowd = Crowd(center, depth, self.sym.daily_vol * AFTER_HOURS_WIDTH_VOL)
        grid = price_grid(self.ah_lower, self.ah_upper, self.sym.market)
        result, buys, sells = self._cross(self.ah_book, grid, crowd, self.close_price)
        self._execute(result, buys, sells, ts)
        self._record_off_hours(result.price, result.volume)
        # unfilled orders wait for the next uncross; the last one (18:00) ends the day for them
        self.ah_book = [o for o in self.ah_book if o.live]
        if k == len(self.times.uncrosses) - 1:
            for o in self.ah_book:
                self.sink.on_expire(o, ts)
            self.ah_book = []

    def off_hours_depth(self) -> tuple[int, int]:
        """(asks, bids) waiting for the closing price or for the next after-hours uncross (시간외 잔량)."""
        phase = self.phase()
        if phase is Phase.POST_CLOSE:
            return sum(lot.left for lot in self.post_queues[1]), sum(lot.left for lot in self.post_queues[0])
        if phase is Phase.AFTER_HOURS:
            live = [o for o in self.ah_book if o.live]
            return sum(o.remaining for o in live if o.side == "SELL"), sum(o.remaining for o in live if o.side == "BUY")
        return 0, 0

    def has_open_orders(self) -> bool:
        return (
            any(o.live for _, _, o in self.bids)
            or any(o.live for _, _, o in self.asks)
            or any(o.live for o in self.takers)
            or any(o.live for o in self.auction)
            or any(lot.order is not None and lot.left > 0 for q in self.post_queues for lot in q)
            or any(o.live for o in self.ah_book)
        )
