"""Forced liquidation: when each position starts, which session and order type sell it, how much is
still to sell, and what the thin books cost.

The close is done as the auction works (docs/strategies.md, "The close").  Each position starts
between ``lead`` and ``last_lead`` minutes before the close (15:30 on a regular day; every time here
moves with the day's own close, docs/market-rules.md "Trading calendar"), the least liquid first, with a conditional
limit (ORD_DVSN 02) priced into the bid: a limit while the book trades continuously, a market order
in the closing auction, so it rests through the auction without a cancel.  Nothing is cancelled or
re-sent from shortly before 15:20 (``cancel_guard_s``) until the uncross, which comes up to 30 s
after 15:30, and nothing new is sent into the auction (a 02 cannot join the call).  What the
uncross leaves goes to the post-close session at the closing price (06), then to the after-hours
single-price session (07) at the lowest price it allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any

from stock_manager.services.strategy.rules.market_state import may_cancel_resting
from stock_manager.shared.calendar import Session
from stock_manager.shared.clock import KST, kst
from stock_manager.shared.market_rules import (
    CLOSE_UNCROSS_MAX_DELAY_S,
    Market,
    Phase,
    after_hours_limits,
    phase_at,
    round_to_tick,
    session_on,
    ticks_away,
)
from stock_manager.shared.market_status import ViState
from stock_manager.shared.trade_states import OrderType

# fills of the uncross reach the book within this long after its latest possible moment
UNCROSS_SETTLE_S = 30
# a liquidation that sold this far below its reference price was sold into a thin book
THIN_COST_PCT = Decimal("0.3")


@dataclass(frozen=True)
class LiquidityView:
    symbol: str
    qty: int
    turnover: Decimal | None
    spread_pct: Decimal | None


class Stage(StrEnum):
    """The part of the day a liquidation sell belongs to; retries are counted per stage."""

    REGULAR = "REGULAR"  # a flatten before the close window: market orders
    CLOSING = "CLOSING"  # the symbol's start until the uncross: conditional limits (02)
    POST_CLOSE = "POST_CLOSE"  # 15:40-16:00: at the closing price (06)
    AFTER_HOURS = "AFTER_HOURS"  # 16:00-18:00: single-price auctions (07)


# the order types whose orders live in each stage's session (the ones that cover shares, and count
# as attempts, there); an order of the regular session is dead once the uncross is over
STAGE_TYPES: dict[Stage, frozenset[str]] = {
    Stage.REGULAR: frozenset({OrderType.MKT, OrderType.LMT, OrderType.CLMT}),
    Stage.CLOSING: frozenset({OrderType.MKT, OrderType.LMT, OrderType.CLMT}),
    Stage.POST_CLOSE: frozenset({OrderType.CLOSE}),
    Stage.AFTER_HOURS: frozenset({OrderType.AHS}),
}
# the stages whose sells are sized on a holding the broker confirmed since the stage began
AFTER_CLOSE_STAGES = frozenset({Stage.POST_CLOSE, Stage.AFTER_HOURS})
NEXT_STAGE: dict[Stage, Stage | None] = {
    Stage.REGULAR: Stage.CLOSING, Stage.CLOSING: Stage.POST_CLOSE, Stage.POST_CLOSE: Stage.AFTER_HOURS,
    Stage.AFTER_HOURS: None,
}


@dataclass(frozen=True)
class Step:
    """What the liquidator may do for one position at one moment."""

    stage: Stage
    order_type: OrderType | None  # None: the stage has no order to offer (paper KIS: no 06/07)
    since: datetime  # the stage's attempts are counted from here
    may_send: bool  # the stage's first sell (in the closing stage only before 15:20)
    may_resend: bool  # another sell after one ended with shares unsold
    may_cancel: bool  # cancel a working sell to re-price it


def _minus(t: time, seconds: float) -> time:
    secs = t.hour * 3600 + t.minute * 60 + t.second - round(seconds)
    return time(secs // 3600, secs % 3600 // 60, secs % 60)


# the times below are relative to the day's close, so a day with other hours (the CSAT day closes
# at 16:30) moves them all; without a session they are those of a regular day
REGULAR_DAY = Session(date(2000, 1, 3))


def session_of(now: datetime) -> Session | None:
    """``now``'s trading day from the calendar; None on a closed day."""
    return session_on(kst(now).date())


def liquidation_start(lead_min: float, session: Session | None = None) -> time:
    return _minus((session or REGULAR_DAY).close, lead_min * 60)


def cancel_cutoff(guard_s: float, session: Session | None = None) -> time:
    """The last moment a working sell may be cancelled to be re-priced: its replacement must be in
    place before the closing auction starts (close - 10 min)."""
    return _minus((session or REGULAR_DAY).closing_auction_start, guard_s)


def uncross_settled(session: Session | None = None) -> time:
    """When the closing auction's fills are surely in: its latest uncross plus a margin."""
    return _minus((session or REGULAR_DAY).close, -(CLOSE_UNCROSS_MAX_DELAY_S + UNCROSS_SETTLE_S))


def in_liquidation_window(now: datetime, lead_min: float) -> bool:
    """From close - lead until the close on a trading day (the closing auction included)."""
    session = session_of(now)
    if session is None or phase_at(now) not in (Phase.CONTINUOUS, Phase.CLOSING_AUCTION):
        return False
    return kst(now).time() >= liquidation_start(lead_min, session)


def after_close(now: datetime) -> bool:
    """The regular session of ``now``'s day is over (or the market is closed that day)."""
    session = session_of(now)
    return session is None or kst(now).time() >= session.close


def flatten_requested(state: str, reason: str | None) -> bool:
    return state == "REDUCING" and (reason or "").upper().startswith("FLATTEN")


def least_liquid_first(views: list[LiquidityView]) -> list[LiquidityView]:
    """The thinnest books need the most time to sell, so they go first."""
    return sorted(views, key=lambda v: (v.turnover if v.turnover is not None else Decimal(-1),
                                        -(v.spread_pct or Decimal(0)), v.symbol))


def start_times(views: list[LiquidityView], lead_min: float, last_lead_min: float,
                session: Session | None = None) -> dict[str, time]:
    """Each position's start, spread evenly by liquidity rank: the least liquid at close - lead,
    the most liquid at close - last_lead (SC-008: 10 to 15 minutes before the close)."""
    ranked = least_liquid_first(views)
    span = (lead_min - last_lead_min) * 60
    last = max(1, len(ranked) - 1)
    close = (session or REGULAR_DAY).close
    return {v.symbol: _minus(close, lead_min * 60 - span * i / last) for i, v in enumerate(ranked)}


def step_at(now: datetime, start: time, *, flatten: bool, after_hours: bool, lead_min: float,
            cancel_guard_s: float) -> Step | None:
    """The stage a position starting at ``start`` is in at ``now``, and what it allows; None: wait.

    ``after_hours``: the broker takes ORD_DVSN 06 and 07 (paper KIS does not).
    """
    local = kst(now)
    day = local.date()
    t = local.time()
    session = session_on(day)
    if session is None:
        return None  # a closed day: nothing trades, so nothing is sold
    phase = phase_at(now)
    window = liquidation_start(lead_min, session)

    def at(x: time) -> datetime:
        return datetime.combine(day, x, KST)

    live = t < cancel_cutoff(cancel_guard_s, session)
    if phase is Phase.CONTINUOUS:
        if t >= start or (flatten and t >= window):
            return Step(Stage.CLOSING, OrderType.CLMT, at(window), True, live, live)
        if flatten:
            return Step(Stage.REGULAR, OrderType.MKT, at(session.open), True, live, live)
        return None
    if phase is Phase.CLOSING_AUCTION:
        # hands off: a 02 cannot join the call, and anything else would be the one sell not in place
        # before 15:20; what has no sell resting waits for the post-close session
        if flatten or t >= window:
            return Step(Stage.CLOSING, OrderType.CLMT, at(window), False, False, False)
        return None
    if phase is Phase.PRE_OPEN and flatten:
        return Step(Stage.REGULAR, OrderType.MKT, at(session.open), True, False, False)
    if phase is Phase.POST_CLOSE:
        return Step(Stage.POST_CLOSE, OrderType.CLOSE if after_hours else None, at(session.post_close_start),
                    True, True, False)
    if phase is Phase.AFTER_HOURS:
        return Step(Stage.AFTER_HOURS, OrderType.AHS if after_hours else None, at(session.after_hours_start),
                    True, True, False)
    return None


def may_cancel(step: Step, attempts: int, max_retries: int, *, vi: ViState | str | None = None) -> bool:
    """Cancel a working sell only when its replacement may still be sent: never in the auction,
    never past the cutoff, never once the stage's retries are spent, never while the symbol is in a
    VI's auction (``vi``: the order rests in it and sells at its uncross)."""
    return step.may_cancel and step.may_resend and attempts - 1 < max_retries and may_cancel_resting(vi)


class Verdict(StrEnum):
    SEND = "SEND"  # write the next sell
    CAPPED = "CAPPED"  # the stage's retries are spent: report, leave the rest to the next stage
    DEFER = "DEFER"  # no re-send now (the auction): the rest waits for the next stage
    NONE = "NONE"  # nothing to do


def verdict(step: Step, rest: int, attempts: int, max_retries: int) -> Verdict:
    """What to do with ``rest`` shares not covered by a working order of the stage (EC-003: at most
    ``max_retries`` re-sends per stage after the first)."""
    if rest <= 0 or step.order_type is None:
        return Verdict.NONE
    if attempts == 0:
        return Verdict.SEND if step.may_send else Verdict.DEFER
    if not step.may_resend:
        return Verdict.DEFER
    if attempts - 1 >= max_retries:
        return Verdict.CAPPED
    return Verdict.SEND


def day_over(now: datetime, *, after_hours: bool, flat: bool) -> bool:
    """The liquidator's day is done: flat after the uncross, or no session left to sell in (paper:
    the uncross was the last; real: the after-hours session ended at 18:00)."""
    session = session_of(now)
    if session is None:
        return False  # a closed day has no day to close
    t = kst(now).time()
    if t >= session.after_hours_end:
        return True
    return t >= uncross_settled(session) and (flat or not after_hours)


def remainder(position_qty: int, open_sell_qty: int) -> int:
    """Shares not yet covered by an order on its way to the market."""
    return max(0, position_qty - max(0, open_sell_qty))


def closing_limit(bid: Decimal | None, price: Decimal | None, lower_limit: int | None, market: Market,
                  ticks: int) -> int | None:
    """A marketable price for the conditional limit: ``ticks`` below the bid (or the last price),
    never below the lower daily limit; None when there is nothing to price from."""
    ref = bid or price
    if ref is None:
        return lower_limit
    p = ticks_away(round_to_tick(int(ref), market), -ticks, market)
    floor = lower_limit or 1
    return max(p, floor)


def after_hours_price(close: Decimal, base: int | None, market: Market) -> int:
    """The lowest price the after-hours session accepts, so the sell clears first: the close less
    10 % rounded up onto the tick grid, or the lower daily limit if that is higher.  Without the
    base price (the prior close) the daily limits are taken around the close, which they contain."""
    c = int(close)
    return after_hours_limits(c, base or c, market)[0]


def _d(v: Any) -> Decimal | None:
    return None if v is None else Decimal(v)


def liquidation_costs(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the day's liquidations got against the price when each began (EC-003's "unfavourable
    fill from thin liquidity"), per round trip, in won and in percent.

    ``rows``: one per liquidation sell, oldest first, with symbol, trip, order_type, ref_price,
    qty, filled_qty and filled_amount.  The reference is the first sell's ref_price (the bid or
    last price when the liquidation began); the cost is what the fills fell short of it.
    """
    trips: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        t = trips.setdefault((r["symbol"], str(r["trip"])), {
            "symbol": r["symbol"], "reference_price": _d(r["ref_price"]), "qty": 0, "amount": Decimal(0),
            "by_type": {}})
        if t["reference_price"] is None:
            t["reference_price"] = _d(r["ref_price"])
        filled = int(r["filled_qty"] or 0)
        if filled <= 0:
            continue
        amount = Decimal(r["filled_amount"] or 0)
        t["qty"] += filled
        t["amount"] += amount
        bt = t["by_type"].setdefault(r["order_type"], {"qty": 0, "amount": Decimal(0)})
        bt["qty"] += filled
        bt["amount"] += amount
    out: list[dict[str, Any]] = []
    total = Decimal(0)
    for t in trips.values():
        ref, qty, amount = t["reference_price"], t["qty"], t["amount"]
        entry: dict[str, Any] = {
            "symbol": t["symbol"], "reference_price": ref, "sold_qty": qty,
            "avg_price": (amount / qty).quantize(Decimal("0.01")) if qty else None,
            "by_type": {k: {"qty": v["qty"], "avg_price": (v["amount"] / v["qty"]).quantize(Decimal("0.01"))}
                        for k, v in t["by_type"].items()},
            "cost_won": None, "cost_pct": None, "thin": False}
        after_close_fills = any(k in (OrderType.CLOSE, OrderType.AHS) for k in t["by_type"])
        if ref is not None and qty:
            cost = (ref * qty - amount).quantize(Decimal("0.01"))
            pct = (cost / (ref * qty) * 100).quantize(Decimal("0.01"))
            entry["cost_won"], entry["cost_pct"] = cost, pct
            total += cost
            entry["thin"] = pct >= THIN_COST_PCT or after_close_fills
        else:
            entry["thin"] = after_close_fills
        out.append(entry)
    thin = [e for e in out if e["thin"]]
    return {"trips": out, "cost_won": total, "thin_symbols": sorted({e["symbol"] for e in thin}),
            "thin_cost_won": sum((e["cost_won"] or Decimal(0) for e in thin), Decimal(0))}


def liquidation_note(costs: Mapping[str, Any]) -> str | None:
    """The daily summary's line on thin-liquidity liquidations, or None when there were none."""
    thin = [e for e in costs["trips"] if e["thin"]]
    if not thin:
        return None
    parts = []
    for e in thin:
        where = "/".join(sorted(e["by_type"]))
        if e["cost_won"] is None:
            parts.append(f"{e['symbol']} via {where}")
        else:
            parts.append(f"{e['symbol']} {e['cost_won']} won ({e['cost_pct']} %) below {e['reference_price']} "
                         f"via {where}")
    return "unfavourable liquidation fills from thin liquidity: " + "; ".join(parts)
