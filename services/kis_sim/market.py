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
- 08:30-09:00 and 15:20-15:30 collect orders for one uncross at 09:00 / 15:30 at a single price;
- what is still open after the closing uncross expires.
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Literal, Protocol

from shared.market_rules import (
    CLOSING_AUCTION_START,
    OPEN_AUCTION_START,
    SESSION_CLOSE,
    SESSION_OPEN,
    Phase,
    price_limits,
    round_to_tick,
    tick_size,
    ticks_away,
)

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
SESSION_S = 23_400.0

PrintSide = Literal[1, 5]  # CCLD_DVSN: 1 buy-initiated (+), 5 sell-initiated (-)
BUY_SIDE: PrintSide = 1
SELL_SIDE: PrintSide = 5


def _secs(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


OPEN_AUCTION_S = _secs(OPEN_AUCTION_START)
OPEN_S = _secs(SESSION_OPEN)
CLOSE_AUCTION_S = _secs(CLOSING_AUCTION_START)
CLOSE_S = _secs(SESSION_CLOSE)
_BOUNDARIES = (OPEN_AUCTION_S, OPEN_S, CLOSE_AUCTION_S, CLOSE_S, DAY_S)


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
    if (nd + 3) % 7 >= 5 or sym.halted:
        return 0
    off = ts - day_start(nd)
    if off < OPEN_S:
        return 0
    session = min(off, CLOSE_AUCTION_S) - OPEN_S
    per_s = TIER_PRINT_RATE[sym.tier] * TIER_PRINT_VALUE[sym.tier] * daily_interest(seed, sym.code, nd)
    volume = per_s * session / sym.prior_close + sym.prior_volume * 0.02
    if off >= CLOSE_S:
        volume += sym.prior_volume * 0.05
    return int(volume)


def hhmmss(ts: float) -> str:
    s = int((ts + KST_OFFSET_S) % DAY_S)
    return f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}"


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


class SymbolState:
    def __init__(self, sym: Symbol, seed: int, now: float, sink: FillSink) -> None:
        self.sym = sym
        self.sink = sink
        self.rng = random.Random(f"{seed}:{sym.code}")
        self.sigma_s = sym.daily_vol / math.sqrt(SESSION_S)
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
        # set while someone streams this symbol: called for every print (WebSocket H0STCNT0)
        self.print_hook: Callable[[SymbolState, Print], None] | None = None
        self.book_dirty = False

    # ------------------------------------------------------------------ time

    @property
    def trade_date(self) -> date:
        return day_date(self.day_no)

    @property
    def trading_day(self) -> bool:
        return (self.day_no + 3) % 7 < 5  # 1970-01-01 was a Thursday

    def phase(self) -> Phase:
        """Phase at the state's own time (it has been advanced to the clock before use)."""
        if not self.trading_day:
            return Phase.CLOSED
        off = self.t - day_start(self.day_no)
        if OPEN_AUCTION_S <= off < OPEN_S:
            return Phase.PRE_OPEN
        if OPEN_S <= off < CLOSE_AUCTION_S:
            return Phase.CONTINUOUS
        if CLOSE_AUCTION_S <= off < CLOSE_S:
            return Phase.CLOSING_AUCTION
        return Phase.CLOSED

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

    def _run_until(self, end: float) -> None:
        start = day_start(self.day_no)
        while self.t < end:
            off = self.t - start
            nxt = next(b for b in _BOUNDARIES if b > off)
            seg_end = min(end, start + nxt)
            if self.trading_day and not self.sym.halted:
                if OPEN_S <= off < CLOSE_AUCTION_S:
                    self._continuous(self.t, seg_end)
                elif OPEN_AUCTION_S <= off < CLOSE_S:
                    self._walk(seg_end - self.t)
            self.t = seg_end
            if seg_end == start + nxt and self.trading_day:
                self._boundary(nxt, seg_end)

    def _boundary(self, offset: int, ts: float) -> None:
        if offset == OPEN_S and not self.sym.halted:
            self._uncross(ts, closing=False)
        elif offset == CLOSE_AUCTION_S:
            # the closing call collects everything still open; 조건부지정가 turns into market
            for o in self._all_open_orders():
                if o.ord_dvsn == "02":
                    o.aggressive = True
                self.auction.append(o)
            self.bids.clear()
            self.asks.clear()
            self.takers.clear()
        elif offset == CLOSE_S:
            leftovers = self._all_open_orders()
            if not self.sym.halted:
                self._uncross(ts, closing=True)
            for o in leftovers:
                if o.live:
                    self.sink.on_expire(o, ts)
            self.bids.clear()
            self.asks.clear()
            self.takers.clear()
            self.auction.clear()

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
        # a taker may also sit in a heap after an uncross; keep each once
        unique: dict[int, Order] = {o.seq: o for o in seen}
        return sorted(unique.values(), key=lambda o: o.seq)

    # ------------------------------------------------------------------ price path

    def _set_limits(self) -> None:
        self.lower, self.upper = price_limits(self.base, self.sym.market)
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
        pull = -0.02 * (self.x - self._log_base) * dt / SESSION_S
        self.x += pull + self.sigma_s * math.sqrt(dt) * self.rng.gauss(0.0, 1.0)
        self._clamp()

    def fair(self) -> int:
        """The fair value on the tick grid: the indicative auction price."""
        p = round_to_tick(round(math.exp(self.x)), self.sym.market)
        return min(max(p, self.lower), self.upper)

    def best(self) -> tuple[int | None, int | None]:
        """(best ask, best bid) of the external book; None when that side is empty (at a limit)."""
        m = math.exp(self.x)
        ask = round_to_tick(int(m) + 1, self.sym.market, up=True)
        if ask > self.upper:
            return None, self.upper
        bid = ask - tick_size(ask - 1, self.sym.market)
        if bid < self.lower:
            return self.lower, None
        return ask, bid

    def _base_depth(self, price: int) -> float:
        return max(1.0, TIER_LEVEL_VALUE[self.sym.tier] / price)

    def _depth(self, side: int, price: int, level: int) -> int:
        """Shares shown at ``price`` (side 0 asks, 1 bids) before user consumption."""
        minute = int((self.t - day_start(self.day_no)) // 60)
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
        """Up to ``n`` (price, qty) levels of the visible book, best first."""
        ask, bid = self.best()
        start = ask if side == 0 else bid
        out: list[tuple[int, int]] = []
        if start is None or self.sym.halted:
            return out
        p = start
        for i in range(n):
            if p > self.upper or p < self.lower or p <= 0:
                break
            out.append((p, self._avail(side, p, i)))
            p = ticks_away(p, 1 if side == 0 else -1, self.sym.market)
        return out

    # ------------------------------------------------------------------ prints

    def _record(self, price: int, qty: int, side: PrintSide, ts: float) -> None:
        st = self.stats
        st.last = price
        if not st.open:
            st.open, st.high, st.low = price, price, price
            st.open_ts = st.high_ts = st.low_ts = ts
        if price > st.high:
            st.high, st.high_ts = price, ts
        if price < st.low:
            st.low, st.low_ts = price, ts
        st.volume += qty
        st.value += price * qty
        if side == BUY_SIDE:
            st.buy_count += 1
            st.buy_volume += qty
        else:
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

    def _continuous(self, t0: float, t1: float) -> None:
        start = day_start(self.day_no)
        t = t0
        rng = self.rng
        print_value = TIER_PRINT_VALUE[self.sym.tier]
        while t < t1:
            m_end = min(t1, start + (int((t - start) // 60) + 1) * 60)
            dt = m_end - t
            n = _poisson(rng, self.rate * self.interest * dt)
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
                self._external_print(BUY_SIDE if rng.random() < 0.5 else SELL_SIDE, value, ti)
                if busy:
                    self._match(ti)
            self._walk(m_end - last)
            if busy or self.consumed[0] or self.consumed[1]:
                self._refill(m_end)
                self._match(m_end)
            else:
                self.refill_ts = m_end
            t = m_end

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
            q = min(size, o.remaining)
            self._fill(o, q, limit, ts, side)
            size -= q
        if size > 0:
            self._record(price, size, side, ts)

    def _fill(self, o: Order, qty: int, price: int, ts: float, side: PrintSide) -> None:
        self._record(price, qty, side, ts)
        self.sink.on_fill(o, qty, price, ts)

    # ------------------------------------------------------------------ user orders

    def submit(self, o: Order, ts: float) -> None:
        """Enter an accepted order; the caller has advanced the state to ``ts``."""
        phase = self.phase()
        if phase in (Phase.PRE_OPEN, Phase.CLOSING_AUCTION):
            self.auction.append(o)
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
        for price, qty in self.levels(side):
            if not o.aggressive and ((side == 0 and price > o.limit) or (side == 1 and price < o.limit)):
                break
            total += qty
        return total

    def _take(self, o: Order, ts: float) -> None:
        """Take liquidity at the book's prices, up to the order's limit unless it is a market order."""
        side = 0 if o.side == "BUY" else 1
        print_side = BUY_SIDE if side == 0 else SELL_SIDE
        for price, qty in self.levels(side):
            if o.remaining <= 0 or o.dead:
                return
            if not o.aggressive and ((side == 0 and price > o.limit) or (side == 1 and price < o.limit)):
                return
            q = min(qty, o.remaining)
            if q <= 0:
                continue
            self._consume(side, price, q)
            self._fill(o, q, price, ts, print_side)

    def _match(self, ts: float) -> None:
        """Fill what the market now reaches: waiting market orders, then crossed limit orders."""
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
                    self._consume(side, price, q)
                    # a resting order trades at its own price; the counterparty is the aggressor
                    self._fill(o, q, limit, ts, SELL_SIDE if side == 0 else BUY_SIDE)
                    got = True
                    if o.remaining <= 0:
                        break
                if not got:
                    break

    def remove(self, o: Order) -> None:
        """Take an order out of the book (cancel / modify); heaps drop it lazily."""
        o.dead = True
        if o in self.auction:
            self.auction.remove(o)
        self.book_dirty = True

    def _uncross(self, ts: float, *, closing: bool) -> None:
        price = self.fair()
        orders = [o for o in self.auction if o.live]
        self.auction = []
        buys = sorted(
            (o for o in orders if o.side == "BUY" and (o.aggressive or o.limit >= price)),
            key=lambda o: (not o.aggressive, -o.limit, o.seq),
        )
        sells = sorted(
            (o for o in orders if o.side == "SELL" and (o.aggressive or o.limit <= price)),
            key=lambda o: (not o.aggressive, o.limit, o.seq),
        )
        depth = self._base_depth(price) * (6.0 if closing else 4.0)
        user_volume = 0
        for group in (buys, sells):
            liquidity = int(depth * self.rng.uniform(0.5, 1.5))
            for o in group:
                if liquidity <= 0:
                    break
                q = min(o.remaining, liquidity)
                liquidity -= q
                user_volume += q
                self.sink.on_fill(o, q, price, ts)
        share = self.rng.uniform(0.03, 0.07) if closing else self.rng.uniform(0.01, 0.03)
        external = max(1, int(self.prior_volume * share))
        self._record(price, external + user_volume, BUY_SIDE if self.rng.random() < 0.5 else SELL_SIDE, ts)
        if closing:
            return
        for o in orders:
            if not o.live:
                continue
            if o.aggressive:
                self.takers.append(o)
            else:
                self._rest(o)
        self._match(ts)

    def has_open_orders(self) -> bool:
        return (
            any(o.live for _, _, o in self.bids)
            or any(o.live for _, _, o in self.asks)
            or any(o.live for o in self.takers)
            or any(o.live for o in self.auction)
        )
