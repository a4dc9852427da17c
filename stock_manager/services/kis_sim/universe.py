"""The listed stocks of the simulated market.

Built deterministically from the seed so that two runs (and two services) agree on codes, names,
prior closes and liquidity.  Nothing about a symbol's intraday life lives here: that is
``market.SymbolState``, created only when the symbol is first touched.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from stock_manager.shared.kis.master import LAYOUTS, MasterRecord, read_master
from stock_manager.shared.market_rules import Market, round_to_tick

# Liquidity tiers: value traded per print (KRW), prints per market second, book value per level.
TIER_PRINT_RATE: tuple[float, ...] = (2.0, 0.5, 0.08, 0.01)
TIER_PRINT_VALUE: tuple[int, ...] = (8_000_000, 2_000_000, 500_000, 200_000)
TIER_LEVEL_VALUE: tuple[int, ...] = (400_000_000, 60_000_000, 6_000_000, 600_000)
# Seconds of market time a consumed level needs to come back.
TIER_REFILL_S: tuple[float, ...] = (20.0, 40.0, 120.0, 600.0)


@dataclass(frozen=True, slots=True)
class Symbol:
    code: str
    name: str
    market: Market
    tier: int
    prior_close: int
    prior_high: int
    prior_low: int
    prior_volume: int
    listed_shares: int
    daily_vol: float
    halted: bool = False

    @property
    def market_name(self) -> str:
        return "KOSPI" if self.market is Market.KOSPI else "KOSDAQ"


# Well-known names keep human testing readable; their prices are plausible, not current.
_PINNED: tuple[tuple[str, str, Market, int, int], ...] = (
    ("005930", "삼성전자", Market.KOSPI, 0, 71_000),
    ("000660", "SK하이닉스", Market.KOSPI, 0, 182_000),
    ("035420", "NAVER", Market.KOSPI, 0, 201_500),
    ("005380", "현대차", Market.KOSPI, 0, 246_000),
    ("035720", "카카오", Market.KOSPI, 0, 41_250),
    ("068270", "셀트리온", Market.KOSPI, 1, 178_300),
    ("247540", "에코프로비엠", Market.KOSDAQ, 1, 121_900),
    ("091990", "셀트리온헬스케어", Market.KOSDAQ, 1, 67_800),
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_PREFIXES = _words(
    """
    한국 대한 동양 신성 삼화 동화 한일 대성 세원 우진 태양 한빛 미래 누리 가온 새한 진흥 동원
    성진 대림 한미 극동 광명 서울 부산 경남 중앙 제일 국제 금강 백산 청호 유진 대양 한솔 동서
    """
)
_STEMS = ("", *_words("에코 바이오 테크 에너지 정밀 디지털 글로벌 메디 나노 스마트 그린"))
_SUFFIXES = _words(
    """
    전자 화학 제약 건설 중공업 반도체 소재 홀딩스 로직스 엔터 푸드 증권 산업 물산 시스템 통신
    기계 금속 섬유 제지 에너지 솔루션 바이오텍 디스플레이 오토 머티리얼즈 네트웍스 이앤씨
    """
)


# The share of listed names in each liquidity tier, most liquid first, as _tier_for draws them.
TIER_SHARES: tuple[float, ...] = (0.05, 0.20, 0.45, 0.30)


def _tier_for(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.05:
        return 0
    if r < 0.25:
        return 1
    if r < 0.70:
        return 2
    return 3


def _make_symbol(rng: random.Random, code: str, name: str, market: Market, tier: int, close_hint: int | None) -> Symbol:
    if close_hint is None:
        # log-uniform 1,000 .. 1,000,000 KRW
        raw = math.exp(rng.uniform(math.log(1_000), math.log(1_000_000)))
        close = round_to_tick(int(raw), market)
    else:
        close = close_hint
    daily_vol = rng.uniform(0.012, 0.035) * (1.0 + 0.4 * tier)
    high = round_to_tick(int(close * (1 + abs(rng.gauss(0, daily_vol)))), market)
    low = round_to_tick(int(close * (1 - abs(rng.gauss(0, daily_vol)))), market, up=True)
    high = max(high, close)
    low = min(max(low, 1), close)
    per_day_prints = TIER_PRINT_RATE[tier] * 23_400
    prior_volume = max(1, int(per_day_prints * TIER_PRINT_VALUE[tier] / close * rng.uniform(0.6, 1.4)))
    listed = int(prior_volume * rng.uniform(150, 1500))
    return Symbol(
        code=code,
        name=name,
        market=market,
        tier=tier,
        prior_close=close,
        prior_high=high,
        prior_low=low,
        prior_volume=prior_volume,
        listed_shares=listed,
        daily_vol=daily_vol,
    )


def build_universe(seed: int, size: int, extra_halted: tuple[str, ...] = ()) -> dict[str, Symbol]:
    """``size`` symbols keyed by 6-digit code, in listing order."""
    rng = random.Random(seed)
    symbols: dict[str, Symbol] = {}
    names: set[str] = set()
    for code, name, market, tier, close in _PINNED[: max(0, size)]:
        symbols[code] = _make_symbol(rng, code, name, market, tier, close)
        names.add(name)
    while len(symbols) < size:
        # common shares end in 0; the odd preferred share ends in 5
        base = rng.randrange(1, 99_999)
        code = f"{base:05d}{'5' if rng.random() < 0.04 else '0'}"
        if code in symbols:
            continue
        name = rng.choice(_PREFIXES) + rng.choice(_STEMS) + rng.choice(_SUFFIXES)
        if code.endswith("5"):
            name += "우"
        if name in names:
            name += str(len(symbols) % 10)
            if name in names:
                continue
        names.add(name)
        market = Market.KOSPI if rng.random() < 0.35 else Market.KOSDAQ
        symbols[code] = _make_symbol(rng, code, name, market, _tier_for(rng), None)
    # a few halted names (거래정지), never the pinned ones
    codes = list(symbols)[len(_PINNED) :]
    halted = set(rng.sample(codes, k=min(len(codes), max(1, size // 400)))) if codes else set()
    halted.update(c for c in extra_halted if c in symbols)
    for code in halted:
        s = symbols[code]
        symbols[code] = Symbol(
            code=s.code,
            name=s.name,
            market=s.market,
            tier=s.tier,
            prior_close=s.prior_close,
            prior_high=s.prior_high,
            prior_low=s.prior_low,
            prior_volume=s.prior_volume,
            listed_shares=s.listed_shares,
            daily_vol=s.daily_vol,
            halted=True,
        )
    return symbols


def tiers_by_rank(values: dict[str, int]) -> dict[str, int]:
    """Liquidity tiers from a size measure (market cap): the largest names take the first tier's share
    of the list, and so on down, so a real universe has the synthetic one's mix of tiers."""
    ranked = sorted(values, key=lambda code: (-values[code], code))
    tiers: dict[str, int] = {}
    bound = 0.0
    start = 0
    for tier, share in enumerate(TIER_SHARES):
        bound += share
        end = len(ranked) if tier == len(TIER_SHARES) - 1 else round(bound * len(ranked))
        tiers.update((code, tier) for code in ranked[start:end])
        start = end
    return tiers


def read_master_dir(folder: Path) -> list[MasterRecord]:
    """The records of the KIS master files in ``folder`` (``kospi_code.mst.zip`` and/or
    ``kosdaq_code.mst.zip``, or the bare ``.mst`` files)."""
    records: list[MasterRecord] = []
    found = False
    for layout in LAYOUTS:
        for name in (layout.zip_name, layout.file_name):
            path = folder / name
            if path.is_file():
                records.extend(read_master(path.read_bytes(), name))
                found = True
                break
    if not found:
        raise FileNotFoundError(f"no KIS master file (kospi_code.mst.zip, kosdaq_code.mst.zip) in {folder}")
    return records


def universe_from_master(records: Iterable[MasterRecord], seed: int,
                         extra_halted: tuple[str, ...] = ()) -> dict[str, Symbol]:
    """The listed shares of real KIS master files (``read_master_dir``): their codes, names, markets,
    base prices, halt flags, prior volumes and listed shares.

    Only shares are taken (group ST, 6-character codes), not ETFs, ETNs, funds or ELWs, whose prices
    this market does not model.  What the files do not say comes from the seed as in
    ``build_universe``: the liquidity tier by market-cap rank (``tiers_by_rank``), the daily
    volatility from the tier, the prior day's high and low around the base price.
    """
    shares = [r for r in records if r.group == "ST" and len(r.code) == 6 and r.code.isalnum() and r.base_price > 0]
    tiers = tiers_by_rank({r.code: r.market_cap for r in shares})
    rng = random.Random(seed)
    symbols: dict[str, Symbol] = {}
    for r in sorted(shares, key=lambda r: r.code):
        close = round_to_tick(r.base_price, r.market)
        made = _make_symbol(rng, r.code, r.name, r.market, tiers[r.code], close)
        symbols[r.code] = replace(made, prior_volume=r.prior_volume or made.prior_volume,
                                  listed_shares=r.listed_shares or made.listed_shares,
                                  halted=r.halted or r.code in extra_halted)
    return symbols
