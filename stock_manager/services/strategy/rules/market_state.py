"""The market's own reasons not to trade a stock, which the product applies whatever the strategy
says: designations, a volatility interruption (VI) in force, a price near a static VI trigger; and
the one thing never done to an order resting in a VI auction (cancel it).

KRX's rules and where each is applied: docs/market-rules.md, "Volatility interruption" and
"Designations".  The vocabularies are ``stock_manager.shared.market_status``.

Reasons are names, as the universe filters' are (``failed_filters``), so the scan counts them in
its ``excluded`` and the CandidateScanned event names the symbols refused for each:

* ``designated_<code>``  iscd_stat_cls_code in SM_STRATEGY_BLOCKED_DESIGNATIONS (51 관리 …);
* ``market_warning_<code>``  mrkt_warn_cls_code in SM_STRATEGY_BLOCKED_WARN_CODES;
* ``liquidation_trading``  정리매매, unless SM_STRATEGY_BLOCK_LIQUIDATION_TRADING is false;
* ``vi_active``  a VI's single-price auction is running;
* ``near_static_vi``  the price is within SM_STRATEGY_VI_NEAR_PCT percent of a static VI trigger
  (the reference ± 10 %), on either side: a buy there is likely to be caught in the auction.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stock_manager.services.strategy.port import MarketSnapshot
from stock_manager.shared.market_status import IN_VI, ViState, describe_designation, static_vi_triggers


@dataclass(frozen=True)
class EntryGates:
    """The operator's settings for the refusals (SM_STRATEGY_*)."""

    blocked_designations: frozenset[str] = frozenset({"51", "52", "53", "58", "59"})
    blocked_warn_codes: frozenset[str] = frozenset({"02", "03"})
    block_liquidation_trading: bool = True
    vi_near_pct: Decimal = Decimal("1.5")

    @classmethod
    def of(cls, *, blocked_designations: Collection[str], blocked_warn_codes: Collection[str],
           block_liquidation_trading: bool, vi_near_pct: Decimal) -> EntryGates:
        return cls(frozenset(blocked_designations), frozenset(blocked_warn_codes), block_liquidation_trading,
                   vi_near_pct)


def designation_refusals(designation: str | None, warn_code: str | None, liquidation_trading: bool,
                         g: EntryGates) -> list[str]:
    out = []
    if designation is not None and designation in g.blocked_designations:
        out.append(f"designated_{designation}")
    if warn_code is not None and warn_code in g.blocked_warn_codes:
        out.append(f"market_warning_{warn_code}")
    if liquidation_trading and g.block_liquidation_trading:
        out.append("liquidation_trading")
    return out


def near_static_vi(price: Decimal, reference: Decimal, near_pct: Decimal) -> bool:
    """Whether ``price`` is within ``near_pct`` percent of a static VI trigger (or past one).

    Reference 10,000: the triggers are 9,000 and 11,000; at 1.5 % the price is near from 10,835 up
    and from 9,135 down.
    """
    lower, upper = static_vi_triggers(reference)
    margin = near_pct / 100
    return price >= upper * (1 - margin) or price <= lower * (1 + margin)


def vi_refusals(vi: ViState | str, price: Decimal, reference: Decimal | None, g: EntryGates) -> list[str]:
    if vi in IN_VI:
        return ["vi_active"]
    if reference is not None and reference > 0 and near_static_vi(price, reference, g.vi_near_pct):
        return ["near_static_vi"]
    return []


def static_reference(m: MarketSnapshot) -> Decimal | None:
    """The static VI's reference: VI_STND_PRC where the stream gave it, else the day's open (which it
    is until a VI moves it; a polled symbol has no VI_STND_PRC)."""
    return m.vi_reference if m.vi_reference is not None else m.open


def entry_refusals(m: MarketSnapshot, g: EntryGates) -> list[str]:
    """Why the product refuses an entry into ``m``; empty means the market does not object."""
    return (designation_refusals(m.designation, m.warn_code, m.liquidation_trading, g)
            + vi_refusals(m.vi, m.price, static_reference(m), g))


def market_state_inputs(m: MarketSnapshot) -> dict[str, Any]:
    """What a refusal records beside its reasons (the candidate's inputs, the events)."""
    out: dict[str, Any] = {"price": str(m.price), "vi": m.vi}
    ref = static_reference(m)
    if ref is not None:
        lower, upper = static_vi_triggers(ref)
        out.update(vi_reference=str(ref), static_vi_triggers=[str(lower), str(upper)])
    if m.vi_since is not None:
        out["vi_since"] = m.vi_since.isoformat()
    if m.designation is not None:
        out["designation"] = describe_designation(m.designation)
    if m.warn_code not in (None, "00"):
        out["warn_code"] = m.warn_code
    if m.liquidation_trading:
        out["liquidation_trading"] = True
    return out


def may_cancel_resting(vi: ViState | str | None) -> bool:
    """Whether an order of this symbol may be cancelled now: never while a VI auction runs.

    An order resting in the auction takes part in its uncross; cancelled and sent again it would only
    rest in the same auction, at the back, and a re-priced one chases a price that is not trading.
    """
    return vi not in IN_VI
