"""KIS's symbol master files ``kospi_code.mst`` and ``kosdaq_code.mst``: their layout, read and written.

KIS publishes them zipped (``kospi_code.mst.zip``, ``kosdaq_code.mst.zip``, one member each) on its
download host.  A file is cp949 text, one record per ``\\n``-ended line:

* the short code (9 characters, space padded: ``005930``, ``0001A0``, ``Q500001``, 9-character fund codes),
* the standard code (12: ``KR7005930003``),
* the Korean name (40 bytes of cp949, space padded),
* a fixed-width tail of ASCII fields: 227 characters in the KOSPI file, 221 in the KOSDAQ file.

The tail's fields, in order and width, are those of KIS's official sample parsers
(``koreainvestment/open-trading-api``, ``stocks_info/kis_kospi_code_mst.py`` and
``kis_kosdaq_code_mst.py``); the names here are ours, the sample's Korean column names beside them.
The layout was checked against real files of 2026-07 (``tests/unit/kis/test_master_files.py``):
every record has that length, and 시가총액 equals 기준가 × 상장주수 to within 2 % in all but a handful.

Units: 기준가 (``base_price``) in won, 전일거래량 (``prior_volume``) in shares, 상장주수
(``listed_shares_k``) in thousands of shares, 시가총액 (``market_cap``) in 억원 (10^8 won).

PriceSync reads these files as its symbol master in paper and live mode; the simulator writes them
from its universe (``GET /sim/master/<name>``) and can build its universe from real ones.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from stock_manager.shared.market_rules import Market

NAME_BYTES: Final = 40  # the name field's width in the real files, in cp949 bytes
HEAD: Final = 9 + 12  # short code and standard code

# How an unset field is written: "N" a Y/N flag, "0" a zero-padded number, " " blank text.
Fill = Literal["N", "0", " "]


@dataclass(frozen=True, slots=True)
class MstField:
    name: str
    width: int
    fill: Fill


def _fields(spec: str) -> tuple[MstField, ...]:
    """``name width fill`` per line (``_`` stands for a blank fill)."""
    out = []
    for line in spec.strip().splitlines():
        name, width, fill = line.split()[:3]
        out.append(MstField(name, int(width), " " if fill == "_" else fill))  # type: ignore[arg-type]
    return tuple(out)


# The KOSPI file's 70 tail fields (227 characters), with the official sample's column names.
_KOSPI_FIELDS: Final = _fields("""
group 2 _  그룹코드 (ST stock, EF ETF, EN ETN, EW ELW, BC fund, RT REIT, FS foreign, DR ...)
cap_size 1 0  시가총액규모
index_large 4 0  지수업종대분류
index_mid 4 0  지수업종중분류
index_small 4 0  지수업종소분류
manufacturing 1 _  제조업
low_liquidity 1 N  저유동성
governance_index 1 N  지배구조지수종목
kospi200_sector 1 _  KOSPI200섹터업종
kospi100 1 N  KOSPI100
kospi50 1 N  KOSPI50
krx 1 N  KRX
etp 1 _  ETP
elw_issued 1 N  ELW발행
krx100 1 N  KRX100
krx_auto 1 N  KRX자동차
krx_semiconductor 1 N  KRX반도체
krx_bio 1 N  KRX바이오
krx_bank 1 N  KRX은행
spac 1 N  SPAC
krx_energy 1 N  KRX에너지화학
krx_steel 1 N  KRX철강
short_term_overheat 1 0  단기과열
krx_media 1 N  KRX미디어통신
krx_construction 1 N  KRX건설
non1 1 N  Non1
krx_securities 1 N  KRX증권
krx_ship 1 N  KRX선박
krx_insurance 1 N  KRX섹터_보험
krx_transport 1 N  KRX섹터_운송
sri 1 N  SRI
base_price 9 0  기준가
lot 5 0  매매수량단위
overtime_lot 5 0  시간외수량단위
halted 1 N  거래정지
liquidation 1 N  정리매매
administrative 1 N  관리종목
market_warning 2 0  시장경고 (00 none, 01 투자주의, 02 투자경고, 03 투자위험)
warning_notice 1 N  경고예고
unfaithful_disclosure 1 N  불성실공시
backdoor_listing 1 N  우회상장
lock_kind 2 0  락구분
par_change 2 0  액면변경
capital_increase 2 0  증자구분
margin_rate 3 0  증거금비율
credit_ok 1 N  신용가능
credit_days 3 0  신용기간
prior_volume 12 0  전일거래량
par_value 12 0  액면가
listed_date 8 0  상장일자
listed_shares_k 15 0  상장주수 (thousands)
capital 21 0  자본금
fiscal_month 2 0  결산월
ipo_price 7 _  공모가
preferred 1 0  우선주
short_sale_overheat 1 _  공매도과열
abnormal_rise 1 N  이상급등
krx300 1 N  KRX300
kospi 1 N  KOSPI
sales 9 0  매출액
operating_profit 9 0  영업이익
ordinary_profit 9 0  경상이익
net_income 5 0  당기순이익
roe 9 0  ROE
base_month 8 0  기준년월
market_cap 9 0  시가총액 (억원)
group_company 3 _  그룹사코드
credit_limit_over 1 N  회사신용한도초과
collateral_loan 1 N  담보대출가능
stock_lending 1 N  대주가능
""")

# The KOSDAQ file's 64 tail fields (221 characters).
_KOSDAQ_FIELDS: Final = _fields("""
group 2 _  증권그룹구분코드
cap_size 1 0  시가총액 규모 구분 코드 유가
index_large 4 0  지수업종 대분류 코드
index_mid 4 0  지수 업종 중분류 코드
index_small 4 0  지수업종 소분류 코드
venture 1 N  벤처기업 여부
low_liquidity 1 N  저유동성종목 여부
krx 1 N  KRX 종목 여부
etp 1 _  ETP 상품구분코드
krx100 1 N  KRX100 종목 여부
krx_auto 1 N  KRX 자동차 여부
krx_semiconductor 1 N  KRX 반도체 여부
krx_bio 1 N  KRX 바이오 여부
krx_bank 1 N  KRX 은행 여부
spac 1 N  기업인수목적회사여부
krx_energy 1 N  KRX 에너지 화학 여부
krx_steel 1 N  KRX 철강 여부
short_term_overheat 1 0  단기과열종목구분코드
krx_media 1 N  KRX 미디어 통신 여부
krx_construction 1 N  KRX 건설 여부
investment_caution 1 N  (코스닥)투자주의환기종목여부
krx_securities 1 N  KRX 증권 구분
krx_ship 1 N  KRX 선박 구분
krx_insurance 1 N  KRX섹터지수 보험여부
krx_transport 1 N  KRX섹터지수 운송여부
kosdaq150 1 N  KOSDAQ150지수여부
base_price 9 0  주식 기준가
lot 5 0  정규 시장 매매 수량 단위
overtime_lot 5 0  시간외 시장 매매 수량 단위
halted 1 N  거래정지 여부
liquidation 1 N  정리매매 여부
administrative 1 N  관리 종목 여부
market_warning 2 0  시장 경고 구분 코드
warning_notice 1 N  시장 경고위험 예고 여부
unfaithful_disclosure 1 N  불성실 공시 여부
backdoor_listing 1 N  우회 상장 여부
lock_kind 2 0  락구분 코드
par_change 2 0  액면가 변경 구분 코드
capital_increase 2 0  증자 구분 코드
margin_rate 3 0  증거금 비율
credit_ok 1 N  신용주문 가능 여부
credit_days 3 0  신용기간
prior_volume 12 0  전일 거래량
par_value 12 0  주식 액면가
listed_date 8 0  주식 상장 일자
listed_shares_k 15 0  상장 주수(천)
capital 21 0  자본금
fiscal_month 2 0  결산 월
ipo_price 7 _  공모 가격
preferred 1 0  우선주 구분 코드
short_sale_overheat 1 _  공매도과열종목여부
abnormal_rise 1 N  이상급등종목여부
krx300 1 N  KRX300 종목 여부
sales 9 0  매출액
operating_profit 9 0  영업이익
ordinary_profit 9 0  경상이익
net_income 5 0  단기순이익
roe 9 0  ROE(자기자본이익률)
base_month 8 0  기준년월
market_cap 9 0  전일기준 시가총액 (억)
group_company 3 _  그룹사 코드
credit_limit_over 1 N  회사신용한도초과여부
collateral_loan 1 N  담보대출가능여부
stock_lending 1 N  대주가능여부
""")


@dataclass(frozen=True, slots=True)
class MstLayout:
    """One file's tail: its fields in order; the name is whatever lies between the codes and the tail."""

    file_name: str
    market: Market
    fields: tuple[MstField, ...]
    offsets: Mapping[str, tuple[int, int]] = field(init=False)

    def __post_init__(self) -> None:
        spans: dict[str, tuple[int, int]] = {}
        at = 0
        for f in self.fields:
            spans[f.name] = (at, at + f.width)
            at += f.width
        object.__setattr__(self, "offsets", spans)

    @property
    def tail(self) -> int:
        return sum(f.width for f in self.fields)

    @property
    def zip_name(self) -> str:
        return self.file_name + ".zip"

    def format_tail(self, values: Mapping[str, str | int | bool]) -> str:
        """The tail with ``values`` set (numbers zero-padded, booleans Y/N) and every other field unset."""
        unknown = set(values) - set(self.offsets)
        if unknown:
            raise ValueError(f"{self.file_name} has no field {sorted(unknown)}")
        parts = []
        for f in self.fields:
            value = values.get(f.name)
            if value is None:
                text = f.fill * f.width
            elif isinstance(value, bool):
                text = ("Y" if value else "N").rjust(f.width, "0")
            elif isinstance(value, int):
                text = str(value).rjust(f.width, "0")
            else:
                text = value.ljust(f.width)
            if len(text) != f.width or not text.isascii():
                raise ValueError(f"{self.file_name} field {f.name}: {value!r} does not fit {f.width} characters")
            parts.append(text)
        return "".join(parts)


KOSPI_MST: Final = MstLayout("kospi_code.mst", Market.KOSPI, _KOSPI_FIELDS)
KOSDAQ_MST: Final = MstLayout("kosdaq_code.mst", Market.KOSDAQ, _KOSDAQ_FIELDS)
LAYOUTS: Final = (KOSPI_MST, KOSDAQ_MST)


def layout_for(name: str) -> MstLayout:
    """The layout of a file named like ``kospi_code.mst``, its zip, or a URL ending in either."""
    lowered = name.rsplit("/", 1)[-1].lower()
    for layout in LAYOUTS:
        if layout.file_name.split("_", 1)[0] in lowered:
            return layout
    raise ValueError(f"no master-file layout for {name!r}")


@dataclass(frozen=True, slots=True)
class MasterRecord:
    """One line of a master file: the codes, the name, and the tail's fields as the file wrote them."""

    code: str
    standard_code: str
    name: str
    market: Market  # the file's (an ETF in the KOSPI file is KOSPI here; its group says ETF)
    values: Mapping[str, str]

    def _int(self, name: str) -> int:
        text = self.values.get(name, "").strip()
        return int(text) if text.isdigit() else 0

    def _flag(self, name: str) -> bool:
        return self.values.get(name, "N") == "Y"

    @property
    def group(self) -> str:
        return self.values["group"].strip()

    @property
    def base_price(self) -> int:
        return self._int("base_price")

    @property
    def halted(self) -> bool:
        return self._flag("halted")

    @property
    def administrative(self) -> bool:
        """관리종목 (designated for administrative supervision)."""
        return self._flag("administrative")

    @property
    def liquidation(self) -> bool:
        """정리매매 (in its last days before delisting)."""
        return self._flag("liquidation")

    @property
    def market_warning(self) -> str:
        """시장경고: ``00`` none, ``01`` 투자주의, ``02`` 투자경고, ``03`` 투자위험."""
        return self.values.get("market_warning", "00").strip() or "00"

    @property
    def prior_volume(self) -> int:
        return self._int("prior_volume")

    @property
    def listed_shares(self) -> int:
        return self._int("listed_shares_k") * 1000

    @property
    def market_cap(self) -> int:
        """In won: the file's 시가총액 (억원), else base price × listed shares."""
        cap = self._int("market_cap") * 100_000_000
        return cap or self.base_price * self.listed_shares


def parse_line(line: str, layout: MstLayout) -> MasterRecord | None:
    """One line of a master file, or None for a line too short to hold a record."""
    line = line.rstrip("\r\n")
    if len(line) <= layout.tail + HEAD:
        return None
    head, tail = line[: -layout.tail], line[-layout.tail :]
    values = {name: tail[a:b] for name, (a, b) in layout.offsets.items()}
    return MasterRecord(head[0:9].strip(), head[9:21].strip(), head[HEAD:].strip(), layout.market, values)


def parse_mst(text: str, layout: MstLayout) -> list[MasterRecord]:
    return [r for line in text.splitlines() if (r := parse_line(line, layout)) is not None]


def read_master(content: bytes, name: str) -> list[MasterRecord]:
    """A downloaded ``*.mst.zip`` (each ``.mst`` member by its own name) or a bare ``.mst``, as cp949."""
    if content[:2] == b"PK":
        out: list[MasterRecord] = []
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            for member in archive.namelist():
                if member.lower().endswith(".mst"):
                    text = archive.read(member).decode("cp949", errors="replace")
                    out.extend(parse_mst(text, layout_for(member)))
        return out
    return parse_mst(content.decode("cp949", errors="replace"), layout_for(name))


def _name_field(name: str) -> bytes:
    """The name in cp949, cut at a character boundary to fit, space padded to the field."""
    raw = name.encode("cp949", errors="replace")
    while len(raw) > NAME_BYTES:
        name = name[:-1]
        raw = name.encode("cp949", errors="replace")
    return raw.ljust(NAME_BYTES)


def format_line(layout: MstLayout, code: str, standard_code: str, name: str,
                values: Mapping[str, str | int | bool]) -> bytes:
    """One record as the real files write it (cp949, ``\\n``-ended)."""
    head = code.ljust(9).encode("ascii") + standard_code.ljust(12).encode("ascii")
    return head + _name_field(name) + layout.format_tail(values).encode("ascii") + b"\n"


def master_zip(layout: MstLayout, lines: Iterable[bytes]) -> bytes:
    """The download: a zip holding the one ``.mst`` file, as KIS serves it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(layout.file_name, b"".join(lines))
    return buf.getvalue()
