"""KRX cash-equity rules shared by the simulator, Execution's validation and Strategy's sizing.

Source: ``kis-api-facts.md`` section 8 (tick table unified 2023-01-25, ±30 % daily limits,
sell-side tax from 2026-01-01).  Prices are whole won, so everything here is ``int`` or ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from enum import StrEnum

from pydantic import TypeAdapter, ValidationError

from stock_manager.shared.calendar import Session, TradingCalendar, installed
from stock_manager.shared.clock import kst

# (upper bound exclusive, tick) for stocks on KOSPI/KOSDAQ/KONEX.
_TICKS: tuple[tuple[int, int], ...] = (
    (2_000, 1),
    (5_000, 5),
    (20_000, 10),
    (50_000, 50),
    (200_000, 100),
    (500_000, 500),
)
_TOP_TICK = 1_000
ETF_TICK = 5

DAILY_LIMIT_RATE = Decimal("0.30")
KONEX_LIMIT_RATE = Decimal("0.15")  # KONEX kept the old ±15 % when KOSPI/KOSDAQ went to ±30 % (2015-06-15)

OPEN_AUCTION_START = time(8, 30)
SESSION_OPEN = time(9, 0)
CLOSING_AUCTION_START = time(15, 20)
SESSION_CLOSE = time(15, 30)
# the closing auction uncrosses once, at a random moment up to this many seconds after 15:30
CLOSE_UNCROSS_MAX_DELAY_S = 30
# after the close (KRX 시간외 시장): trades at the closing price, then periodic single-price auctions
POST_CLOSE_START = time(15, 40)  # 장후 시간외 종가, ORD_DVSN 06
AFTER_HOURS_START = time(16, 0)  # 시간외 단일가, ORD_DVSN 07, an uncross every 10 minutes
AFTER_HOURS_END = time(18, 0)
# 시간외 단일가: limit prices within this fraction of the day's close, one uncross every 10 minutes
AFTER_HOURS_BAND_RATE = Decimal("0.10")
AFTER_HOURS_UNCROSS_EVERY_S = 600
# Volatility interruption (변동성완화장치, docs/market-rules.md): a trade this far from the static
# reference (the last single-price auction's price: the open, or the last VI auction's) or from the
# last trade (dynamic; KOSPI200 members, others; narrower in the closing call) turns the symbol into a
# single-price auction of VI_AUCTION_S seconds plus a random end of up to VI_MAX_RANDOM_END_S.
STATIC_VI_RATE = Decimal("0.10")
DYNAMIC_VI_RATE_KOSPI200 = Decimal("0.03")
DYNAMIC_VI_RATE = Decimal("0.06")
CLOSING_DYNAMIC_VI_RATE_KOSPI200 = Decimal("0.02")
CLOSING_DYNAMIC_VI_RATE = Decimal("0.04")
VI_AUCTION_S = 120
VI_MAX_RANDOM_END_S = 30


class Market(StrEnum):
    KOSPI = "KOSPI"
    KOSDAQ = "KOSDAQ"
    KONEX = "KONEX"
    ETF = "ETF"


class Phase(StrEnum):
    """Where the regular KRX session is at a given KST time."""

    CLOSED = "CLOSED"
    PRE_OPEN = "PRE_OPEN"  # 08:30-09:00 opening auction order intake
    CONTINUOUS = "CONTINUOUS"  # 09:00-15:20
    CLOSING_AUCTION = "CLOSING_AUCTION"  # 15:20-15:30, one uncross at 15:30 (+ up to 30 s)
    POST_CLOSE = "POST_CLOSE"  # 15:40-16:00 장후 시간외: at the day's closing price only
    AFTER_HOURS = "AFTER_HOURS"  # 16:00-18:00 시간외 단일가: single-price auctions every 10 minutes


def tick_size(price: int, market: Market = Market.KOSPI) -> int:
    """The tick in force at ``price``."""
    if market is Market.ETF:
        return ETF_TICK
    for bound, tick in _TICKS:
        if price < bound:
            return tick
    return _TOP_TICK


def on_tick(price: int, market: Market = Market.KOSPI) -> bool:
    return price > 0 and price % tick_size(price, market) == 0


def round_to_tick(price: int, market: Market = Market.KOSPI, *, up: bool = False) -> int:
    """Round ``price`` onto the tick grid: down by default (a buyer never pays more), up if asked."""
    tick = tick_size(price, market)
    down = price - price % tick
    if up and down != price:
        nxt = down + tick
        # the tick can widen exactly at a band edge; the grid there is the wider band's
        return nxt if nxt % tick_size(nxt, market) == 0 else round_to_tick(nxt, market, up=True)
    return down


def ticks_away(price: int, n: int, market: Market = Market.KOSPI) -> int:
    """The price ``n`` ticks above (n > 0) or below (n < 0) an on-tick ``price``."""
    p = price
    for _ in range(abs(n)):
        if n > 0:
            p += tick_size(p, market)
        else:
            p -= tick_size(p - 1, market)
    return p


def price_limits(base_price: int, market: Market = Market.KOSPI) -> tuple[int, int]:
    """(lower, upper) daily limit prices from the base price (usually the prior close).

    KRX computes one amount, the base times the limit rate cut down to the tick of the *base*
    price, and moves it both ways; an upper limit that lands in a wider band is then cut down to
    that band's tick.  Rounding each side's price separately (as this did before) gets the lower
    limit wrong for about one base in five.  Lower limits need no second cut: ticks widen by
    multiples, so base minus a multiple of the base's tick is on the narrower grid below it.
    """
    rate = KONEX_LIMIT_RATE if market is Market.KONEX else DAILY_LIMIT_RATE
    tick = tick_size(base_price, market)
    raw = int((Decimal(base_price) * rate).to_integral_value(ROUND_DOWN))
    amount = raw - raw % tick
    upper = round_to_tick(base_price + amount, market)
    return max(base_price - amount, 1), upper


def after_hours_limits(close: int, base: int, market: Market = Market.KOSPI) -> tuple[int, int]:
    """(lower, upper) limit prices of 시간외 단일가: ±10 % of the day's close, never outside the daily limits.

    Rounded onto the tick grid toward the close, as the daily limits are toward the base, so the
    band never exceeds 10 %.
    """
    raw_up = int((Decimal(close) * (1 + AFTER_HOURS_BAND_RATE)).to_integral_value(ROUND_DOWN))
    raw_down = int((Decimal(close) * (1 - AFTER_HOURS_BAND_RATE)).to_integral_value(ROUND_UP))
    day_lower, day_upper = price_limits(base, market)
    upper = min(round_to_tick(raw_up, market), day_upper)
    lower = max(round_to_tick(raw_down, market, up=True), day_lower)
    return lower, upper


def phase_at(at: datetime, calendar: TradingCalendar | None = None) -> Phase:
    """Session phase at ``at``: the one question everybody asks about market hours.

    Calendar-aware: a closed day is CLOSED all day, and a shifted day (10:00 first-day open, the
    CSAT day's 10:00-16:30) moves every phase with its open and close.  ``calendar`` defaults to
    the one the process installed (``shared.calendar.install``), so pure tests pass their own.
    """
    local = kst(at)
    session = (calendar or installed()).session(local.date())
    if session is None:
        return Phase.CLOSED
    t = local.time()
    if session.open_auction_start <= t < session.open:
        return Phase.PRE_OPEN
    if session.open <= t < session.closing_auction_start:
        return Phase.CONTINUOUS
    if session.closing_auction_start <= t < session.close:
        return Phase.CLOSING_AUCTION
    if session.post_close_start <= t < session.after_hours_start:
        return Phase.POST_CLOSE
    if session.after_hours_start <= t < session.after_hours_end:
        return Phase.AFTER_HOURS
    return Phase.CLOSED


def session_on(day: date, calendar: TradingCalendar | None = None) -> Session | None:
    """The day's hours from the installed calendar (or ``calendar``); None when closed."""
    return (calendar or installed()).session(day)


def trade_date(at: datetime) -> date:
    """The KST calendar date: KIS order numbers restart every trade date."""
    return kst(at).date()


SETTLEMENT_LAG_DAYS = 2  # KRX cash equities settle on T+2 business days


def settlement_date(traded: date, calendar: TradingCalendar | None = None) -> date:
    """The day a trade on ``traded`` settles: the second trading day after it (T+2).

    Counted on the trading calendar (``calendar`` or the process's installed one), so a sale on
    2025-12-29 settles on 2026-01-02, past the Dec 31 closure and New Year's Day.
    """
    cal = calendar or installed()
    out = traded
    for _ in range(SETTLEMENT_LAG_DAYS):
        out = cal.next_trading_day(out)
    return out


def sell_tax_rate(market: Market, settles: date) -> Decimal:
    """Securities transaction tax plus 농특세 on the sell side, by the *settlement* date.

    The tax falls due when the shares change hands, at settlement, so a sale in the last two
    trading days of 2025 already pays 2026's rate.
    """
    if market is Market.ETF:
        return Decimal(0)
    if market is Market.KONEX:
        return Decimal("0.0010")
    return Decimal("0.0020") if settles >= date(2026, 1, 1) else Decimal("0.0015")


DEFAULT_COMMISSION_RATE = Decimal("0.00015")
MAX_COMMISSION_RATE = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class FeeTier:
    """One band of a fee schedule: ``rate`` of the trade value plus ``fixed`` won, for values below ``below``."""

    rate: Decimal
    below: int | None = None  # exclusive upper bound of the trade value in won; None: no bound
    fixed: int = 0

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.rate <= MAX_COMMISSION_RATE:
            raise ValueError(f"a rate must be between 0 and {MAX_COMMISSION_RATE}, not {self.rate}")
        if self.below is not None and self.below <= 0:
            raise ValueError("a tier's bound must be a positive number of won")
        if self.fixed < 0:
            raise ValueError("a fixed fee cannot be negative")


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Brokerage fees tiered by trade value.

    KIS's non-face-to-face (online) accounts pay one flat rate; branch and phone accounts pay by
    bands of trade value, some with a fixed amount on top, so a single rate cannot describe them.
    Tiers go up by their bounds and the last has none, so every value falls in exactly one.
    """

    tiers: tuple[FeeTier, ...]

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a fee schedule needs at least one tier")
        bounds = [t.below for t in self.tiers[:-1]]
        if any(b is None for b in bounds) or self.tiers[-1].below is not None:
            raise ValueError("only the last tier may be unbounded, and it must be")
        known = [b for b in bounds if b is not None]
        if known != sorted(set(known)):
            raise ValueError("tier bounds must increase")

    @classmethod
    def flat(cls, rate: Decimal) -> FeeSchedule:
        return cls((FeeTier(rate),))

    def tier(self, amount: Decimal | int) -> FeeTier:
        for t in self.tiers:
            if t.below is None or amount < t.below:
                return t
        raise AssertionError("unreachable: the last tier is unbounded")

    def fee(self, amount: Decimal | int) -> Decimal:
        """The fee in whole won, the rate's part rounded down (KIS truncates below 1 won)."""
        t = self.tier(amount)
        return (Decimal(amount) * t.rate).to_integral_value(ROUND_DOWN) + t.fixed


# what a fee setting may be: one flat rate or a schedule
Fees = Decimal | FeeSchedule


def parse_fee_schedule(text: str) -> FeeSchedule:
    """A schedule from JSON: ``[{"below": 2000000, "rate": "0.004971"}, {"rate": "0.0015", "fixed": 2000}]``.

    One parser for every process that charges fees (Execution and the simulator), so both read
    the same setting the same way.  A malformed schedule raises ``ValueError`` naming the problem.
    """
    try:
        tiers = _TIERS.validate_json(text)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise ValueError(f"{msg}{f' (tier {where})' if where else ''}") from None
    return FeeSchedule(tiers)


_TIERS: TypeAdapter[tuple[FeeTier, ...]] = TypeAdapter(tuple[FeeTier, ...])


def commission(amount: Decimal | int, fees: Fees = DEFAULT_COMMISSION_RATE) -> Decimal:
    """Brokerage commission in whole won, rounded down (KIS truncates below 1 won)."""
    if isinstance(fees, FeeSchedule):
        return fees.fee(amount)
    return (Decimal(amount) * fees).to_integral_value(ROUND_DOWN)


def affordable_qty(cash: int, unit: int, fees: Fees) -> int:
    """The most shares at ``unit`` that ``cash`` pays for together with their commission.

    Searched rather than divided: a tier's fixed amount or a bound between two quantities makes
    the cost per share depend on the quantity.  Starts from the division at the first tier's rate
    and walks a few steps either way.
    """
    if unit <= 0 or cash <= 0:
        return 0

    def cost(q: int) -> int:
        return q * unit + int(commission(q * unit, fees))

    rate = fees.tier(cash).rate if isinstance(fees, FeeSchedule) else fees
    q = int(Decimal(cash) / (unit * (1 + rate)))
    while q > 0 and cost(q) > cash:
        q -= 1
    while cost(q + 1) <= cash:
        q += 1
    return q


def sell_tax(amount: Decimal | int, market: Market, traded: date, calendar: TradingCalendar | None = None) -> Decimal:
    """Sell-side tax in whole won, rounded down, at the rate of the trade's settlement date."""
    rate = sell_tax_rate(market, settlement_date(traded, calendar))
    return (Decimal(amount) * rate).to_integral_value(ROUND_DOWN)


def dynamic_vi_rate(kospi200: bool, *, closing: bool = False) -> Decimal:
    """How far from the last trade a trade starts a dynamic VI: 3 % / 6 % (KOSPI200 members / the
    rest), 2 % / 4 % in the closing call."""
    if closing:
        return CLOSING_DYNAMIC_VI_RATE_KOSPI200 if kospi200 else CLOSING_DYNAMIC_VI_RATE
    return DYNAMIC_VI_RATE_KOSPI200 if kospi200 else DYNAMIC_VI_RATE


def vi_trips(price: int, reference: int, rate: Decimal) -> bool:
    """Whether a trade at ``price`` would be ``rate`` or more away from ``reference``, either way."""
    return reference > 0 and abs(price - reference) >= reference * rate
