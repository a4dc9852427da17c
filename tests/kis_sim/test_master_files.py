"""The simulator's symbol master in KIS's real format, and its universe built from real master files.

``GET /sim/master/<name>`` must be what PriceSync's own parser reads as it reads KIS's download, and
list exactly the universe ``/sim/symbols`` shows.  With ``master_dir`` (``kis-sim --master DIR``)
the universe is the real files' listed shares, with their halts and designations
(``shared/kis-samples/master`` beside the repository;
those tests skip, with the reason, where it is absent).
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stock_manager.services.kis_sim.universe import TIER_SHARES, tiers_by_rank
from stock_manager.services.pricesync.symbols import read_master_download
from stock_manager.shared.kis.master import read_master
from stock_manager.shared.market_rules import Market

from .conftest import Kis, SimServer, make_config

MASTER = Path(__file__).resolve().parents[2].parent / "shared" / "kis-samples" / "master"
needs_master = pytest.mark.skipif(
    not MASTER.is_dir(),
    reason=f"real KIS master files not found at {MASTER} (shared/kis-samples/master beside the repo)",
)


def _get(server: SimServer, name: str) -> httpx.Response:
    return httpx.get(f"{server.url}/sim/master/{name}", timeout=10)


def _served(server: SimServer) -> dict[str, tuple[str, Market, int | None, bool]]:
    out = {}
    for name in ("kospi_code.mst.zip", "kosdaq_code.mst.zip"):
        for i in read_master_download(_get(server, name).content, f"{server.url}/sim/master/{name}"):
            out[i.symbol] = (i.name, i.market, i.base_price, i.halted)
    return out


def _symbols(server: SimServer) -> dict[str, tuple[str, Market, int | None, bool]]:
    return {s["symbol"]: (s["name"], Market(s["market"]), s["base_price"], s["halted"])
            for s in server.control("GET", "/sim/symbols")["symbols"]}


def test_master_files_list_the_universe(psim: SimServer) -> None:
    r = _get(psim, "kospi_code.mst.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert archive.namelist() == ["kospi_code.mst"]
        lines = [line for line in archive.read("kospi_code.mst").split(b"\n") if line]
    assert lines and {len(line) for line in lines} == {9 + 12 + 40 + 227}  # the real files' record length
    symbols = _symbols(psim)
    assert any(halted for *_, halted in symbols.values())
    assert _served(psim) == symbols
    records = {r.code: r for r in read_master(r.content, "kospi_code.mst.zip")}
    samsung = records["005930"]
    assert (samsung.standard_code, samsung.name, samsung.group) == ("KR7005930003", "삼성전자", "ST")
    assert samsung.prior_volume > 0 and samsung.market_cap > 0
    assert _get(psim, "konex_code.mst.zip").status_code == 404


def test_tiers_follow_the_rank_of_market_cap() -> None:
    caps = {f"{n:06d}": n for n in range(1, 201)}
    tiers = tiers_by_rank(caps)
    counts = Counter(tiers.values())
    assert [counts[t] for t in range(len(TIER_SHARES))] == [round(s * 200) for s in TIER_SHARES]
    assert tiers["000200"] == 0 and tiers["000001"] == len(TIER_SHARES) - 1
    by_size = [tiers[code] for code in sorted(caps, key=lambda c: -caps[c])]
    assert by_size == sorted(by_size)


@pytest.fixture(scope="module")
def real_master_sim() -> Iterator[SimServer]:
    if not MASTER.is_dir():
        pytest.skip(f"real KIS master files not found at {MASTER} (shared/kis-samples/master beside the repo)")
    with SimServer(make_config(env="paper", master_dir=MASTER)) as sim:
        yield sim


@needs_master
def test_universe_from_real_master_files(real_master_sim: SimServer) -> None:
    real = {}
    for name in ("kospi_code.mst.zip", "kosdaq_code.mst.zip"):
        real.update({r.code: r for r in read_master((MASTER / name).read_bytes(), name)
                     if r.group == "ST" and len(r.code) == 6 and r.base_price > 0})
    symbols = _symbols(real_master_sim)
    assert set(symbols) == set(real)
    assert all(symbols[c] == (r.name, r.market, r.base_price, r.halted) for c, r in real.items())
    assert symbols["005930"] == ("삼성전자", Market.KOSPI, 259_000, False)
    assert symbols["0001A0"][:2] == ("덕양에너젠", Market.KOSDAQ)
    assert symbols["000040"][3] and symbols["001840"][3]  # halted in the files
    rows = {s["symbol"]: s for s in real_master_sim.control("GET", "/sim/symbols")["symbols"]}
    assert rows["005930"]["tier"] == 0 and rows["000660"]["tier"] == 0
    # the files' designations: 관리종목, 시장경보, 정리매매
    administrative = {c for c, r in real.items() if r.administrative}
    assert administrative and {c for c, s in rows.items() if s["designation"] == "51"} == administrative
    assert all(rows[c]["warn_code"] == r.market_warning for c, r in real.items())
    assert {c for c, s in rows.items() if s["liquidation_trading"]} == {c for c, r in real.items() if r.liquidation}
    assert rows["060240"]["liquidation_trading"]
    assert rows["005930"]["designation"] is None
    # and the files it serves say the same again
    assert _served(real_master_sim) == symbols


@needs_master
async def test_real_universe_trades_on_paper(real_master_sim: SimServer) -> None:
    real_master_sim.reset()
    kis = Kis(real_master_sim)
    await kis.login()
    samsung = await kis.price("005930")
    assert samsung["stck_sdpr"] == "259000"
    assert (await kis.price("000040"))["iscd_stat_cls_code"] == "58"  # halted
    r = await kis.order("BUY", "005930", 1)
    body = r.json()
    assert body["rt_cd"] == "0", body
    assert r.headers["tr_id"] == "VTTC0012U"
