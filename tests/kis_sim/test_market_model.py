"""The synthetic market's model (issue #14, docs/replay.md "The synthetic market"): the shared factor,
the intraday U-shape, spreads and gaps, regimes, our orders' impact and auctions that follow the
imbalance, all the same for the same seed.  Pure functions and ``SymbolState`` driven directly."""

from __future__ import annotations

import itertools
import math
from datetime import datetime

from stock_manager.services.kis_sim import factors
from stock_manager.services.kis_sim.factors import activity, activity_share, day_regimes, market_factor, spread_ticks
from stock_manager.services.kis_sim.market import SymbolState, day_number, day_start, expected_volume
from stock_manager.services.kis_sim.universe import TIER_REFILL_S, Symbol
from stock_manager.shared.market_rules import Market, ticks_away
from tests.kis_sim.test_vi import Sink, order

DAY = "2026-12-03"
OPEN, END = 9 * 3600, 15 * 3600 + 20 * 60


def ts(hhmmss: str) -> float:
    return datetime.fromisoformat(f"{DAY}T{hhmmss}+09:00").timestamp()


def sym(i: int, tier: int = 0, vol: float = 0.015, price: int = 50_000) -> Symbol:
    return Symbol(f"9{i:05d}", f"테스트{i}", Market.KOSPI, tier, price, price, price, 1_000_000, 10**8, vol)


def state(s: Symbol, seed: int = 1, at: str = "08:30:00") -> SymbolState:
    st = SymbolState(s, seed, ts(at), Sink())
    st.advance(ts(at))
    return st


def fair_path(st: SymbolState, step: float) -> list[tuple[float, float]]:
    """The fair value every ``step`` seconds of the continuous session."""
    t, out = ts("09:00:00"), []
    while t <= ts("15:20:00"):
        st.advance(t)
        out.append((t, st.x))
        t += step
    return out


def corr(a: list[float], b: list[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))


def test_one_factor_path_per_seed_and_day_moves_every_symbol() -> None:
    day = day_number(ts("12:00:00"))
    assert market_factor(1, day, 30_600, OPEN, END) is market_factor(1, day, 30_600, OPEN, END)  # computed once
    assert market_factor(1, day, 30_600, OPEN, END).levels != market_factor(2, day, 30_600, OPEN, END).levels
    returns = []
    for i in range(6):
        path = fair_path(state(sym(i)), 300)
        returns.append([b[1] - a[1] for a, b in itertools.pairwise(path)])
    pairs = [corr(a, b) for a, b in itertools.combinations(returns, 2)]
    assert sum(pairs) / len(pairs) > 0.3  # liquid names over a day (about 0.6 with these volatilities)


def test_volume_is_u_shaped_and_the_day_total_unchanged() -> None:
    first = sum(activity(t, OPEN, END) for t in range(OPEN, OPEN + 1800, 10))
    last = sum(activity(t, OPEN, END) for t in range(END - 1800, END, 10))
    lunch = sum(activity(t, OPEN, END) for t in range(12 * 3600, 13 * 3600, 10)) / 2
    assert first > 2 * lunch and last > 1.3 * lunch
    assert activity_share(END, OPEN, END) == 1.0 and abs(activity_share(OPEN + 11_400, OPEN, END) - 0.5) < 0.2
    st = state(sym(1, tier=1, vol=0.02))
    st.advance(ts("15:20:00"))
    by = {"first": 0, "lunch": 0, "last": 0}
    for c in st.stats.candles:
        m = c.minute * 60
        if OPEN <= m < OPEN + 1800:
            by["first"] += c.volume
        elif 12 * 3600 <= m < 12 * 3600 + 1800:
            by["lunch"] += c.volume
        elif END - 1800 <= m < END:
            by["last"] += c.volume
    assert by["first"] > by["lunch"] and by["last"] > by["lunch"]
    expected = expected_volume(st.sym, 1, ts("15:19:59"))
    assert 0.6 < st.stats.volume / expected < 1.6  # the ranking's estimate of untouched names still holds


def test_spreads_vary_by_tier_and_thin_names_have_gaps() -> None:
    day = day_number(ts("12:00:00"))
    liquid = [spread_ticks(1, "005930", day, 0, t, OPEN) for t in range(OPEN + 3600, END, 15)]
    thin = [spread_ticks(1, "900001", day, 3, t, OPEN) for t in range(OPEN + 3600, END, 15)]
    assert liquid.count(1) / len(liquid) > 0.7 and max(liquid) == 2
    assert thin.count(1) / len(thin) < 0.4 and max(thin) >= 5
    st = state(sym(2, tier=3, vol=0.05, price=20_000))
    spreads, gaps = set(), 0
    t = ts("10:00:00")
    for _ in range(120):
        st.advance(t)
        ask, bid = st.best()
        asks = st.levels(0)
        assert ask is not None and bid is not None and ask > bid and asks[0][0] == ask and st.levels(1)[0][0] == bid
        assert all(q > 0 for _, q in asks)
        spreads.add(ticks_between(bid, ask, st.sym.market))
        gaps += any(ticks_away(a, 1, st.sym.market) != b for (a, _), (b, _) in itertools.pairwise(asks))
        t += 30
    assert len(spreads) > 1 and gaps > 10


def ticks_between(low: int, high: int, market: Market) -> int:
    n, p = 0, low
    while p < high:
        p, n = ticks_away(p, 1, market), n + 1
    return n


def _autocorrelations(seeds: range, kind_of: str) -> float:
    num = den = 0.0
    for seed in seeds:
        for i in range(20):
            st = state(sym(100 + i, tier=1, vol=0.02), seed)
            start = day_start(st.day_no)
            five = fair_path(st, 300)
            r = [(t, b - a) for (t, a), (_, b) in itertools.pairwise(five)]
            for (t0, r0), (t1, r1) in itertools.pairwise(r):
                regime = st.model.regime(t0 - start)
                if regime is not None and regime is st.model.regime(t1 + 299 - start) and regime.kind == kind_of:
                    num += r0 * r1
                    den += r0 * r0
    return num / den


def test_momentum_returns_autocorrelate_positively_and_reverting_ones_negatively() -> None:
    assert _autocorrelations(range(1, 3), "momentum") > 0.05
    assert _autocorrelations(range(1, 3), "reversion") < -0.05


def test_regimes_are_drawn_per_symbol_and_day() -> None:
    day = day_number(ts("12:00:00"))
    kinds = {r.kind for i in range(40) for r in day_regimes(1, f"{i:06d}", day, OPEN, END)}
    assert kinds == {"momentum", "reversion", "neutral"}
    assert day_regimes(1, "005930", day, OPEN, END) == day_regimes(1, "005930", day, OPEN, END)


def test_our_market_buy_moves_the_price_up_and_the_move_decays() -> None:
    st = state(sym(3, tier=1, vol=0.02, price=10_000), at="10:00:00")
    x0, (ask0, _) = st.x, st.best()
    depth = sum(q for _, q in st.levels(0))
    buy = order(st, 1, "BUY", depth // 2)
    st.submit(buy, ts("10:00:00"))
    pushed = st.x - x0
    assert pushed > 0 and st.fair() > round(math.exp(x0)) and (st.best()[0] or 0) > (ask0 or 0)
    assert math.isclose(pushed, factors.impact(buy.filled_qty * 10_000, st.daily_value(), 0.02), rel_tol=0.2)
    transient = st.model.transient
    assert math.isclose(transient, pushed * (1 - factors.IMPACT_PERMANENT), rel_tol=1e-9)
    st.advance(ts("10:00:00") + 3 * TIER_REFILL_S[1])
    assert st.model.transient < 0.1 * transient


def _open_price(extra_buy: int) -> int:
    st = state(sym(4, tier=1, vol=0.02, price=10_000), at="08:50:00")
    if extra_buy:
        st.submit(order(st, 1, "BUY", extra_buy), ts("08:50:00"))
    st.advance(ts("09:00:01"))
    return st.stats.open


def test_an_auction_with_a_big_buy_imbalance_uncrosses_higher() -> None:
    crowd = _open_price(0)
    assert crowd > 0
    assert _open_price(20_000) > crowd  # about the crowd's depth: half a width up


def test_the_same_seed_makes_the_same_day() -> None:
    a, b = state(sym(5, tier=2, vol=0.03)), state(sym(5, tier=2, vol=0.03))
    assert fair_path(a, 60) == fair_path(b, 60)
    assert a.stats.candles == b.stats.candles and [v.started for v in a.vis] == [v.started for v in b.vis]
