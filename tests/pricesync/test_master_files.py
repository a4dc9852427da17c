"""PriceSync's symbol master on KIS's real master files (2026-07, ``shared/kis-samples/master``).

These are the bytes paper and live mode download; the tests skip, with the reason, where the
folder beside the repository is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stock_manager.services.pricesync.symbols import SymbolInfo, most_traded, read_master_download
from stock_manager.shared.market_rules import Market

MASTER = Path(__file__).resolve().parents[2].parent / "shared" / "kis-samples" / "master"
pytestmark = pytest.mark.skipif(
    not MASTER.is_dir(),
    reason=f"real KIS master files not found at {MASTER} (shared/kis-samples/master beside the repo)",
)


def _read(name: str) -> dict[str, SymbolInfo]:
    url = f"https://new.real.download.dws.co.kr/common/master/{name}"
    infos = read_master_download((MASTER / name).read_bytes(), url)
    by_code = {i.symbol: i for i in infos}
    assert len(by_code) == len(infos), "a code listed twice"
    return by_code


def test_kospi_file() -> None:
    kospi = _read("kospi_code.mst.zip")
    # 2,568 records less the 84 funds whose 9-character codes are not tradable symbols here
    assert len(kospi) == 2484
    samsung = kospi["005930"]
    assert (samsung.name, samsung.market, samsung.base_price, samsung.halted) == ("삼성전자", Market.KOSPI, 259_000,
                                                                                  False)
    assert samsung.limits == (181_500, 336_500)  # the limit width cut to the base price's tick
    assert samsung.prior_value == 20_386_896 * 259_000
    assert (kospi["000660"].name, kospi["000660"].base_price) == ("SK하이닉스", 1_836_000)
    assert kospi["035720"].name == "카카오"
    # ETFs and ETNs are in the KOSPI file; their own market (a 5-won tick)
    assert kospi["0000D0"].market is Market.ETF and kospi["0000D0"].name.startswith("TIGER")
    assert sum(i.market is Market.ETF for i in kospi.values()) == 1151 + 386
    halted = {c for c, i in kospi.items() if i.halted}
    assert len(halted) == 32 and "000040" in halted
    assert kospi["000040"].name == "KR모터스"


def test_kosdaq_file_with_designations() -> None:
    kosdaq = _read("kosdaq_code.mst.zip")
    assert len(kosdaq) == 1821
    assert all(i.market is Market.KOSDAQ for i in kosdaq.values())
    assert kosdaq["0001A0"].name == "덕양에너젠"  # KRX's newer alphanumeric codes
    halted = {c for c, i in kosdaq.items() if i.halted}
    assert len(halted) == 86 and {"001840", "013720"} <= halted
    assert sum(i.designation == "51" for i in kosdaq.values()) == 86  # 관리종목
    assert kosdaq["060240"].liquidation_trading  # 정리매매
    assert {i.warn_code for i in kosdaq.values()} == {"00", "01", "02"}


def test_most_traded_of_the_prior_day() -> None:
    """Paper KIS has no volume ranking; the master's prior volume × base price stands in for it."""
    both = {**_read("kospi_code.mst.zip"), **_read("kosdaq_code.mst.zip")}
    top = most_traded(both.values(), 30)
    assert len(top) == 30
    assert not any(i.halted for i in top)
    values = [i.prior_value or 0 for i in top]
    assert values == sorted(values, reverse=True)
    assert "005930" in {i.symbol for i in top}
