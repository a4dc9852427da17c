"""KIS's symbol master files: the layout in ``stock_manager.shared.kis.master`` on real bytes.

The real files (2026-07) are in ``shared/kis-samples/master`` beside the repository; the tests that
read them skip, with the reason, where the folder is absent.
"""

from __future__ import annotations

import io
import zipfile

import pytest

from stock_manager.shared.kis.master import (
    HEAD,
    KOSDAQ_MST,
    KOSPI_MST,
    NAME_BYTES,
    MstLayout,
    format_line,
    layout_for,
    master_zip,
    parse_line,
    read_master,
)
from stock_manager.shared.market_rules import Market

from .conftest import SAMPLES

MASTER = SAMPLES / "master"
needs_master = pytest.mark.skipif(
    not MASTER.is_dir(),
    reason=f"real KIS master files not found at {MASTER} (shared/kis-samples/master beside the repo)",
)


def _lines(name: str) -> list[bytes]:
    with zipfile.ZipFile(MASTER / name) as archive:
        [member] = archive.namelist()
        return [line for line in archive.read(member).split(b"\n") if line]


def test_layouts_are_the_official_samples() -> None:
    assert (len(KOSPI_MST.fields), KOSPI_MST.tail) == (70, 227)
    assert (len(KOSDAQ_MST.fields), KOSDAQ_MST.tail) == (64, 221)
    assert KOSPI_MST.offsets["base_price"] == (41, 50) and KOSPI_MST.offsets["halted"] == (60, 61)
    assert KOSDAQ_MST.offsets["base_price"] == (36, 45) and KOSDAQ_MST.offsets["halted"] == (55, 56)
    assert layout_for("https://host/common/master/kosdaq_code.mst.zip") is KOSDAQ_MST
    assert layout_for("KOSPI_CODE.MST") is KOSPI_MST
    with pytest.raises(ValueError, match="no master-file layout"):
        layout_for("konex_code.mst")


def test_a_written_record_reads_back() -> None:
    line = format_line(KOSDAQ_MST, "0001A0", "KR70001A0004", "덕양에너젠", {
        "group": "ST", "base_price": 12_340, "lot": 1, "halted": True, "administrative": True,
        "market_warning": "02", "prior_volume": 5_000, "listed_shares_k": 20_000, "market_cap": 2468})
    assert len(line) == HEAD + NAME_BYTES + KOSDAQ_MST.tail + 1
    record = parse_line(line.decode("cp949"), KOSDAQ_MST)
    assert record is not None
    assert (record.code, record.standard_code, record.name, record.market, record.group) == (
        "0001A0", "KR70001A0004", "덕양에너젠", Market.KOSDAQ, "ST")
    assert (record.base_price, record.halted, record.administrative, record.market_warning) == (
        12_340, True, True, "02")
    assert (record.prior_volume, record.listed_shares, record.market_cap) == (5_000, 20_000_000, 246_800_000_000)
    assert record.liquidation is False and record.values["lot"] == "00001"


def test_a_long_name_is_cut_to_the_field_at_a_character() -> None:
    line = format_line(KOSPI_MST, "005930", "KR7005930003", "가" * 30, {"group": "ST"})
    assert line[HEAD : HEAD + NAME_BYTES].decode("cp949") == "가" * 20
    with pytest.raises(ValueError, match="does not fit"):
        KOSPI_MST.format_tail({"base_price": 10**9})
    with pytest.raises(ValueError, match="no field"):
        KOSPI_MST.format_tail({"kosdaq150": True})


def test_master_zip_holds_the_one_file() -> None:
    content = master_zip(KOSPI_MST, [format_line(KOSPI_MST, "005930", "KR7005930003", "삼성전자",
                                                 {"group": "ST", "base_price": 71_000})])
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.namelist() == ["kospi_code.mst"]
    [record] = read_master(content, "whatever.zip")
    assert (record.name, record.base_price) == ("삼성전자", 71_000)


@needs_master
@pytest.mark.parametrize(("name", "layout", "records"), [("kospi_code.mst.zip", KOSPI_MST, 2568),
                                                         ("kosdaq_code.mst.zip", KOSDAQ_MST, 1821)])
def test_real_files_have_the_layout_byte_for_byte(name: str, layout: MstLayout, records: int) -> None:
    """Every real record is exactly as long as the layout says, and writing what was read gives
    the same bytes back: the field widths, the name's 40 cp949 bytes and the fills all match."""
    lines = _lines(name)
    assert len(lines) == records
    assert {len(line) for line in lines} == {HEAD + NAME_BYTES + layout.tail}
    for line in lines:
        record = parse_line(line.decode("cp949"), layout)
        assert record is not None
        assert format_line(layout, record.code, record.standard_code, record.name, record.values) == line + b"\n"


@needs_master
def test_real_market_caps_agree_with_price_times_shares() -> None:
    """The numeric fields sit where the layout says: 시가총액 (억원) = 기준가 × 상장주수 (천주)."""
    for name in ("kospi_code.mst.zip", "kosdaq_code.mst.zip"):
        records = read_master((MASTER / name).read_bytes(), name)
        # the file rounds to 억원, so a small cap may be off by one 억 more than 2 %
        agree = sum(1 for r in records
                    if abs(r.base_price * r.listed_shares - r.market_cap) <= max(2e8, 0.02 * r.market_cap))
        assert agree >= 0.99 * len(records), name


@needs_master
def test_real_records_known_symbols() -> None:
    kospi = {r.code: r for r in read_master((MASTER / "kospi_code.mst.zip").read_bytes(), "kospi_code.mst.zip")}
    kosdaq = {r.code: r for r in read_master((MASTER / "kosdaq_code.mst.zip").read_bytes(), "kosdaq_code.mst.zip")}
    samsung = kospi["005930"]
    assert (samsung.name, samsung.standard_code, samsung.market, samsung.group) == (
        "삼성전자", "KR7005930003", Market.KOSPI, "ST")
    assert (samsung.base_price, samsung.halted, samsung.prior_volume, samsung.listed_shares) == (
        259_000, False, 20_386_896, 5_846_278_000)
    assert samsung.market_cap == 15_141_861 * 100_000_000
    assert (kospi["000660"].name, kospi["000660"].base_price) == ("SK하이닉스", 1_836_000)
    assert kospi["000040"].halted and kospi["000040"].name == "KR모터스"
    assert kosdaq["001840"].halted and kosdaq["001840"].name == "이화공영"
    assert kosdaq["060240"].liquidation
    assert sum(r.halted for r in kospi.values()) == 33 and sum(r.halted for r in kosdaq.values()) == 86
    assert sum(r.administrative for r in kosdaq.values()) == 86
    assert {r.market_warning for r in kospi.values()} == {"00", "01", "02"}
    assert kospi["0000D0"].group == "EF" and kosdaq["0001A0"].group == "ST"

