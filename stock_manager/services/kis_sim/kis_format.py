"""KIS wire shapes built from the simulator's state.

Every number leaves as a string, query outputs use lowercase keys, and the key sets follow the
official examples in ``kis-samples`` so that a parser written against KIS finds what it expects.
"""

from __future__ import annotations

import hashlib
import math
import weakref
from dataclasses import dataclass
from datetime import date

from stock_manager.shared.market_rules import Phase, tick_size

from .accounts import Account, Position, business_days_before
from .listing import HALTED_STATUS, NORMAL_STATUS
from .market import BOOK_LEVELS, BUY_SIDE, SELL_SIDE, Candle, Cross, Print, SymbolState, day_start, hhmmss
from .orders import ORD_DVSN_NAMES, Order, OrderKind
from .universe import Symbol


def sign(price: int, st: SymbolState) -> str:
    """PRDY_VRSS_SIGN: 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down."""
    if price >= st.upper:
        return "1"
    if price <= st.lower:
        return "4"
    if price > st.base:
        return "2"
    if price < st.base:
        return "5"
    return "3"


def _rel_sign(a: int, b: int) -> str:
    return "2" if a > b else "5" if a < b else "3"


def pct(num: float, den: float, digits: int = 2) -> str:
    return f"{(num / den * 100 if den else 0.0):.{digits}f}"


def shnu_rate(buy_volume: int, volume: int) -> str:
    """H0STCNT0 SHNU_RATE: buy-initiated volume over the day's whole volume as a fraction, rounded up
    to hundredths -- the rule that reproduces all three KIS frames in kis-samples (0.45, 0.37, 0.39).

    Not a percentage: a client that scales it by 100 would see 45 % where KIS means 0.45.
    """
    return f"{math.ceil(buy_volume / volume * 100 - 1e-9) / 100 if volume else 0.0:.2f}"


def ymd(d: date) -> str:
    return d.strftime("%Y%m%d")


def _static(sym: Symbol, salt: str, lo: float, hi: float) -> float:
    """A per-symbol constant (PER, PBR, …): stable across runs, no state needed."""
    h = int(hashlib.blake2s(f"{sym.code}:{salt}".encode(), digest_size=4).hexdigest(), 16)
    return lo + (hi - lo) * (h / 0xFFFFFFFF)


def mkop_code(st: SymbolState) -> str:
    """NEW_MKOP_CLS_CODE: first digit 1 pre-open, 2 session, 3 after the close, 4 시간외 단일가; second
    digit 1 for the closing price (21 the closing call until its uncross, 31 장후 시간외 종가)."""
    phase = st.phase()
    if phase is Phase.PRE_OPEN:
        return "10"
    if phase is Phase.CONTINUOUS:
        return "20"
    if st.in_call():  # 15:20 until the closing uncross, which may fall after 15:30
        return "21"
    if phase is Phase.POST_CLOSE:
        return "31"
    if phase is Phase.AFTER_HOURS:
        return "40"
    return "30"


def vi_code(st: SymbolState) -> str:
    """vi_cls_code (VI적용구분코드): ``Y`` while the symbol is in a VI, else ``N``.

    KIS documents the field's values only on its market-status feed (H0STMKO0: "Y VI적용된 종목, N VI적용되지
    않은 종목"); inquire-price's examples show ``N``.  Which VI it is, KIS tells apart only in its VI
    status query (vi_kind_code 1 static, 2 dynamic, 3 both), which the simulator does not serve.
    """
    return "N" if st.vi is None else "Y"


def hour_code(st: SymbolState) -> str:
    """HOUR_CLS_CODE of H0STCNT0 (field 43) and H0STASP0 (field 2): ``C`` (9시 이후의 예상가, VI발동)
    during a VI auction, else ``0`` (장중)."""
    return "C" if st.vi is not None else "0"


def _indicative(st: SymbolState) -> tuple[int, int]:
    """(price, volume) the running call auction would uncross at now; (0, 0) outside one."""
    cross = st.indicative()
    return (cross.price, cross.volume) if cross is not None else (0, 0)


def _book_totals(st: SymbolState) -> tuple[list[tuple[int, int]], list[tuple[int, int]], int, int]:
    asks = st.levels(0)
    bids = st.levels(1)
    return asks, bids, sum(q for _, q in asks), sum(q for _, q in bids)


def _pad(levels: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return levels + [(0, 0)] * (BOOK_LEVELS - len(levels))


def _pad_changes(changes: list[int]) -> list[int]:
    return changes + [0] * (BOOK_LEVELS - len(changes))


@dataclass(frozen=True, slots=True)
class RsqnChanges:
    """``*_RSQN_ICDC``: per shown level (price order) and in total, the change in resting quantity."""

    asks: list[int]
    bids: list[int]
    total_ask: int
    total_bid: int


class BookChanges:
    """What each symbol's book showed last time, so the next answer can carry KIS's ``*_rsqn_icdc``.

    KIS fills these with the change since its previous publication; a client that watches queues
    build or drain reads them, so always sending 0 hides exactly what they are for.  A level's change
    is taken at its price (0 shown before at a price new to the book), since a level index
    points at another price once the book moves.  One instance per stream (the WebSocket frames,
    the REST answers); keyed weakly by the symbol's state, so a reset or a new state starts afresh.
    """

    def __init__(self) -> None:
        self._last: weakref.WeakKeyDictionary[SymbolState, tuple[dict[int, int], dict[int, int], int, int]] = (
            weakref.WeakKeyDictionary()
        )

    def since_last(self, st: SymbolState, asks: list[tuple[int, int]], bids: list[tuple[int, int]]) -> RsqnChanges:
        now_asks, now_bids = dict(asks), dict(bids)
        total_ask, total_bid = sum(now_asks.values()), sum(now_bids.values())
        before = self._last.get(st)
        self._last[st] = (now_asks, now_bids, total_ask, total_bid)
        if before is None:
            return RsqnChanges([0] * len(asks), [0] * len(bids), 0, 0)
        prev_asks, prev_bids, prev_total_ask, prev_total_bid = before
        return RsqnChanges(
            [q - prev_asks.get(p, 0) for p, q in asks],
            [q - prev_bids.get(p, 0) for p, q in bids],
            total_ask - prev_total_ask,
            total_bid - prev_total_bid,
        )


# ---------------------------------------------------------------------------------- quotations


def inquire_price(st: SymbolState) -> dict[str, str]:
    sym, s = st.sym, st.stats
    price = s.last
    vwap = s.value / s.volume if s.volume else float(price)
    halted = sym.halted
    designated = st.designation
    full_margin = halted or designated.full_margin
    w52_hi = max(sym.prior_high, int(st.base * _static(sym, "w52h", 1.05, 1.6)))
    w52_lo = min(sym.prior_low, int(st.base * _static(sym, "w52l", 0.5, 0.95)))
    eps = _static(sym, "eps", 0.02, 0.12) * st.base
    bps = _static(sym, "bps", 0.4, 1.5) * st.base
    return {
        "iscd_stat_cls_code": HALTED_STATUS if halted else designated.status or NORMAL_STATUS,
        "marg_rate": "100.00" if sym.tier == 3 or designated.full_margin else "40.00" if sym.tier == 2 else "20.00",
        # KIS names a KOSPI200 member's market KOSPI200 (its own example, 000660)
        "rprs_mrkt_kor_name": "KOSDAQ" if sym.market_name != "KOSPI" else "KOSPI200" if st.kospi200 else "KOSPI",
        "bstp_kor_isnm": "기타",
        "temp_stop_yn": "Y" if halted else "N",
        "oprc_rang_cont_yn": "N",
        "clpr_rang_cont_yn": "N",
        "crdt_able_yn": "N" if full_margin else "Y",
        "grmn_rate_cls_code": "40",
        "elw_pblc_yn": "N",
        "stck_prpr": str(price),
        "prdy_vrss": str(price - st.base),
        "prdy_vrss_sign": sign(price, st),
        "prdy_ctrt": pct(price - st.base, st.base),
        "acml_tr_pbmn": str(s.value),
        "acml_vol": str(s.volume),
        "prdy_vrss_vol_rate": pct(s.volume, st.prior_volume),
        "stck_oprc": str(s.open),
        "stck_hgpr": str(s.high),
        "stck_lwpr": str(s.low),
        "stck_mxpr": str(st.upper),
        "stck_llam": str(st.lower),
        "stck_sdpr": str(st.base),
        "wghn_avrg_stck_prc": f"{vwap:.2f}",
        "hts_frgn_ehrt": f"{_static(sym, 'frgn', 0, 55):.2f}",
        "frgn_ntby_qty": "0",
        "pgtr_ntby_qty": "0",
        "pvt_scnd_dmrs_prc": str(int(st.prior_high * 1.02)),
        "pvt_frst_dmrs_prc": str(int(st.prior_high * 1.01)),
        "pvt_pont_val": str((st.prior_high + st.prior_low + st.base) // 3),
        "pvt_frst_dmsp_prc": str(int(st.prior_low * 0.99)),
        "pvt_scnd_dmsp_prc": str(int(st.prior_low * 0.98)),
        "dmrs_val": str(st.prior_high),
        "dmsp_val": str(st.prior_low),
        "cpfn": str(max(1, sym.listed_shares * 500 // 100_000_000)),
        "rstc_wdth_prc": str(st.upper - st.base),
        "stck_fcam": "500",
        "stck_sspr": str(int(st.base * 0.75)),
        "aspr_unit": str(tick_size(price, sym.market)),
        "hts_deal_qty_unit_val": "1",
        "lstn_stcn": str(sym.listed_shares),
        "hts_avls": str(max(1, price * sym.listed_shares // 100_000_000)),
        "per": f"{price / eps:.2f}",
        "pbr": f"{price / bps:.2f}",
        "stac_month": "12",
        "vol_tnrt": pct(s.volume, sym.listed_shares),
        "eps": f"{eps:.2f}",
        "bps": f"{bps:.2f}",
        "d250_hgpr": str(w52_hi),
        "d250_hgpr_date": "20260115",
        "d250_hgpr_vrss_prpr_rate": pct(price - w52_hi, w52_hi),
        "d250_lwpr": str(w52_lo),
        "d250_lwpr_date": "20250820",
        "d250_lwpr_vrss_prpr_rate": pct(price - w52_lo, w52_lo),
        "stck_dryy_hgpr": str(w52_hi),
        "dryy_hgpr_vrss_prpr_rate": pct(price - w52_hi, w52_hi),
        "dryy_hgpr_date": "20260115",
        "stck_dryy_lwpr": str(w52_lo),
        "dryy_lwpr_vrss_prpr_rate": pct(price - w52_lo, w52_lo),
        "dryy_lwpr_date": "20260105",
        "w52_hgpr": str(w52_hi),
        "w52_hgpr_vrss_prpr_ctrt": pct(price - w52_hi, w52_hi),
        "w52_hgpr_date": "20260115",
        "w52_lwpr": str(w52_lo),
        "w52_lwpr_vrss_prpr_ctrt": pct(price - w52_lo, w52_lo),
        "w52_lwpr_date": "20250820",
        "whol_loan_rmnd_rate": "0.10",
        "ssts_yn": "Y",
        "stck_shrn_iscd": sym.code,
        "fcam_cnnm": "500",
        "cpfn_cnnm": f"{max(1, sym.listed_shares * 500 // 100_000_000):,} 억",
        "frgn_hldn_qty": str(int(sym.listed_shares * _static(sym, "frgn", 0, 0.55))),
        "vi_cls_code": vi_code(st),
        "ovtm_vi_cls_code": "N",
        "last_ssts_cntg_qty": "0",
        "invt_caful_yn": "N",
        "mrkt_warn_cls_code": designated.warning,
        "short_over_yn": "Y" if designated.status == "59" else "N",
        "sltr_yn": "Y" if designated.liquidation else "N",
    }


def asking_price(st: SymbolState, changes: BookChanges) -> tuple[dict[str, str], dict[str, str]]:
    asks, bids, total_ask, total_bid = _book_totals(st)
    icdc = changes.since_last(st, asks, bids)
    ask_icdc, bid_icdc = _pad_changes(icdc.asks), _pad_changes(icdc.bids)
    ovtm_ask, ovtm_bid = st.off_hours_depth()
    out1: dict[str, str] = {"aspr_acpt_hour": hhmmss(st.t)}
    pa, pb = _pad(asks), _pad(bids)
    for i in range(BOOK_LEVELS):
        out1[f"askp{i + 1}"] = str(pa[i][0])
    for i in range(BOOK_LEVELS):
        out1[f"bidp{i + 1}"] = str(pb[i][0])
    for i in range(BOOK_LEVELS):
        out1[f"askp_rsqn{i + 1}"] = str(pa[i][1])
    for i in range(BOOK_LEVELS):
        out1[f"bidp_rsqn{i + 1}"] = str(pb[i][1])
    for i in range(BOOK_LEVELS):
        out1[f"askp_rsqn_icdc{i + 1}"] = str(ask_icdc[i])
    for i in range(BOOK_LEVELS):
        out1[f"bidp_rsqn_icdc{i + 1}"] = str(bid_icdc[i])
    out1.update(
        {
            "total_askp_rsqn": str(total_ask),
            "total_bidp_rsqn": str(total_bid),
            "total_askp_rsqn_icdc": str(icdc.total_ask),
            "total_bidp_rsqn_icdc": str(icdc.total_bid),
            "ovtm_total_askp_icdc": "0",
            "ovtm_total_bidp_icdc": "0",
            "ovtm_total_askp_rsqn": str(ovtm_ask),
            "ovtm_total_bidp_rsqn": str(ovtm_bid),
            "ntby_aspr_rsqn": str(total_bid - total_ask),
            "new_mkop_cls_code": mkop_code(st),
        }
    )
    s = st.stats
    auction = st.in_call()
    antc, antc_vol = _indicative(st)
    out2 = {
        "antc_mkop_cls_code": "112" if auction else "311",
        "stck_prpr": str(s.last),
        "stck_oprc": str(s.open),
        "stck_hgpr": str(s.high),
        "stck_lwpr": str(s.low),
        "stck_sdpr": str(st.base),
        "antc_cnpr": str(antc),
        "antc_cntg_vrss_sign": sign(antc, st) if antc else "3",
        "antc_cntg_vrss": str(antc - st.base) if antc else "0",
        "antc_cntg_prdy_ctrt": pct(antc - st.base, st.base) if antc else "0.00",
        "antc_vol": str(antc_vol),
        "stck_shrn_iscd": st.sym.code,
        "vi_cls_code": vi_code(st),
    }
    return out1, out2


def chart(st: SymbolState, until_hhmmss: str, limit: int = 30) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Minute bars (newest first) up to ``until_hhmmss``, at most ``limit``; today only."""
    s, sym = st.stats, st.sym
    out1 = {
        "prdy_vrss": str(s.last - st.base),
        "prdy_vrss_sign": sign(s.last, st),
        "prdy_ctrt": pct(s.last - st.base, st.base),
        "stck_prdy_clpr": str(st.base),
        "acml_vol": str(s.volume),
        "acml_tr_pbmn": str(s.value),
        "hts_kor_isnm": sym.name,
        "stck_prpr": str(s.last),
    }
    try:
        h, mi = int(until_hhmmss[0:2]), int(until_hhmmss[2:4])
        until = h * 60 + mi
    except (ValueError, IndexError):
        until = 24 * 60
    bars: list[Candle] = [c for c in st.stats.candles if c.minute <= until]
    day = ymd(st.trade_date)
    rows = []
    for c in reversed(bars[-limit:]):
        # a bar is stamped with the minute it covers (HHMM00); the newest one may still be forming
        rows.append(
            {
                "stck_bsop_date": day,
                "stck_cntg_hour": f"{c.minute // 60:02d}{c.minute % 60:02d}00",
                "stck_prpr": str(c.close),
                "stck_oprc": str(c.open),
                "stck_hgpr": str(c.high),
                "stck_lwpr": str(c.low),
                "cntg_vol": str(c.volume),
                "acml_tr_pbmn": str(c.acml_value),
            }
        )
    return out1, rows


def search_info(sym: Symbol) -> dict[str, str]:
    """상품기본조회 (CTPF1604R): what clients use to resolve a code to a market and a name."""
    return {
        "pdno": sym.code,
        "prdt_type_cd": "300",
        "prdt_name": sym.name,
        "prdt_name120": sym.name,
        "prdt_abrv_name": sym.name,
        "prdt_eng_name": f"SIM {sym.code}",
        "prdt_eng_name120": f"SIM {sym.code}",
        "prdt_eng_abrv_name": f"SIM {sym.code}",
        "std_pdno": f"KR7{sym.code}00{sym.code[-1]}",
        "shtn_pdno": sym.code,
        "prdt_sale_stat_cd": "",
        "prdt_risk_grad_cd": "",
        "prdt_clsf_cd": "101210" if sym.market_name == "KOSPI" else "101220",
        "prdt_clsf_name": "주권",
        "sale_strt_dt": "",
        "sale_end_dt": "",
        "wrap_asst_type_cd": "",
        "ivst_prdt_type_cd": "",
        "ivst_prdt_type_cd_name": "",
        "frst_erlm_dt": "20000101",
    }


def volume_rank_row(rank: int, st: SymbolState) -> dict[str, str]:
    s, sym = st.stats, st.sym
    return {
        "hts_kor_isnm": sym.name,
        "mksc_shrn_iscd": sym.code,
        "data_rank": str(rank),
        "stck_prpr": str(s.last),
        "prdy_vrss_sign": sign(s.last, st),
        "prdy_vrss": str(s.last - st.base),
        "prdy_ctrt": pct(s.last - st.base, st.base),
        "acml_vol": str(s.volume),
        "prdy_vol": str(st.prior_volume),
        "lstn_stcn": str(sym.listed_shares),
        "avrg_vol": str(s.volume),
        "n_befr_clpr_vrss_prpr_rate": pct(s.last - st.base, st.base),
        "vol_inrt": pct(s.volume, st.prior_volume),
        "vol_tnrt": pct(s.volume, sym.listed_shares),
        "nday_vol_tnrt": pct(s.volume, sym.listed_shares),
        "avrg_tr_pbmn": str(s.value),
        "tr_pbmn_tnrt": pct(s.volume, sym.listed_shares),
        "nday_tr_pbmn_tnrt": pct(s.volume, sym.listed_shares),
        "acml_tr_pbmn": str(s.value),
    }


# ---------------------------------------------------------------------------------- real time


def cnt_record(st: SymbolState, p: Print) -> list[str]:
    """One H0STCNT0 record (46 fields) for a print, with the day's running figures at that print."""
    s, sym = st.stats, st.sym
    ask, bid = st.best()
    asks, bids, total_ask, total_bid = _book_totals(st)
    strength = s.buy_volume / s.sell_volume * 100 if s.sell_volume else 0.0
    vwap = s.value / s.volume if s.volume else float(p.price)
    elapsed = max(0.0, min(1.0, (p.ts - day_start(st.day_no) - 32_400) / 23_400))
    same_time_prior = int(st.prior_volume * elapsed) or 1
    return [
        sym.code,
        hhmmss(p.ts),
        str(p.price),
        sign(p.price, st),
        str(p.price - st.base),
        pct(p.price - st.base, st.base),
        f"{vwap:.2f}",
        str(s.open),
        str(s.high),
        str(s.low),
        str(ask or 0),
        str(bid or 0),
        str(p.qty),
        str(s.volume),
        str(s.value),
        str(s.sell_count),
        str(s.buy_count),
        str(s.buy_count - s.sell_count),
        f"{strength:.2f}",
        str(s.sell_volume),
        str(s.buy_volume),
        str(p.side),
        shnu_rate(s.buy_volume, s.volume),
        pct(s.volume, st.prior_volume),
        hhmmss(s.open_ts),
        _rel_sign(p.price, s.open),
        str(p.price - s.open),
        hhmmss(s.high_ts),
        _rel_sign(p.price, s.high),
        str(p.price - s.high),
        hhmmss(s.low_ts),
        _rel_sign(p.price, s.low),
        str(p.price - s.low),
        ymd(st.trade_date),
        mkop_code(st),
        "Y" if sym.halted else "N",
        str(asks[0][1] if asks else 0),
        str(bids[0][1] if bids else 0),
        str(total_ask),
        str(total_bid),
        pct(s.volume, sym.listed_shares),
        str(same_time_prior),
        pct(s.volume, same_time_prior),
        hour_code(st),
        "",
        str(st.static_ref),  # VI_STND_PRC: the open on KIS's frames, a VI auction's price after one
    ]


def cnt_indicative(st: SymbolState, cross: Cross) -> list[str]:
    """An H0STCNT0 record during a VI auction: the indicative price where the trade price goes, no
    volume of its own (CNTG_VOL 0), HOUR_CLS_CODE ``C``; the day's figures stay as they were."""
    side = BUY_SIDE if cross.demand >= cross.supply else SELL_SIDE
    return cnt_record(st, Print(st.t, cross.price, 0, side))


def asp_record(st: SymbolState, n_fields: int, changes: BookChanges) -> list[str]:
    """One H0STASP0 record: 59 documented fields, plus the 3 mid-price fields seen on the real feed."""
    asks, bids, total_ask, total_bid = _book_totals(st)
    icdc = changes.since_last(st, asks, bids)
    pa, pb = _pad(asks), _pad(bids)
    antc, antc_vol = _indicative(st)
    ovtm_ask, ovtm_bid = st.off_hours_depth()
    out = [st.sym.code, hhmmss(st.t), hour_code(st)]
    out += [str(p) for p, _ in pa]
    out += [str(p) for p, _ in pb]
    out += [str(q) for _, q in pa]
    out += [str(q) for _, q in pb]
    out += [str(total_ask), str(total_bid), str(ovtm_ask), str(ovtm_bid)]
    out += [
        str(antc),
        str(antc_vol),
        str(antc_vol),
        str(antc - st.base),
        sign(antc, st) if antc else "5",
        pct(antc - st.base, st.base),
        str(st.stats.volume),
        str(icdc.total_ask),
        str(icdc.total_bid),
        "0",
        "0",
        "0",
    ]
    if n_fields == 62:
        mid = (pa[0][0] + pb[0][0]) // 2 if asks and bids else 0
        out += [str(mid), "0", "0"]
    return out


# ---------------------------------------------------------------------------------- accounts


def _side_name(o: Order) -> str:
    base = "매도" if o.side == "SELL" else "매수"
    if o.kind is OrderKind.CANCEL:
        return f"{base}취소"
    if o.kind is OrderKind.MODIFY:
        return f"{base}정정"
    return f"현금{base}"


def daily_ccld_row(o: Order) -> dict[str, str]:
    is_cancel = o.kind is OrderKind.CANCEL
    return {
        "ord_dt": ymd(o.trade_date),
        "ord_gno_brno": o.branch,
        "odno": o.odno,
        "orgn_odno": o.orgn_odno,
        "ord_dvsn_name": ORD_DVSN_NAMES.get(o.ord_dvsn, ""),
        "sll_buy_dvsn_cd": "01" if o.side == "SELL" else "02",
        "sll_buy_dvsn_cd_name": _side_name(o),
        "pdno": o.symbol,
        "prdt_name": o.symbol_name,
        "ord_qty": str(o.qty),
        "ord_unpr": str(o.price),
        "ord_tmd": o.ord_tmd,
        "tot_ccld_qty": str(o.filled_qty),
        "avg_prvs": str(round(o.avg_price)),
        "cncl_yn": "Y" if is_cancel or o.cancelled_qty else "",
        "tot_ccld_amt": str(o.filled_amt),
        "loan_dt": "",
        "ordr_empno": "OpnAPI",
        "ord_dvsn_cd": o.ord_dvsn,
        "cnc_cfrm_qty": str(o.qty if is_cancel else o.cancelled_qty),
        "cncl_cfrm_qty": str(o.qty if is_cancel else o.cancelled_qty),
        "rmn_qty": "0" if is_cancel else str(o.remaining + o.expired_qty),
        "rjct_qty": str(o.rejected_qty),
        "ccld_cndt_name": {"1": "IOC", "2": "FOK"}.get(o.cond, "없음"),
        "inqr_ip_addr": "",
        "cpbc_ordp_ord_rcit_dvsn_cd": "",
        "cpbc_ordp_infm_mthd_dvsn_cd": "",
        "infm_tmd": "",
        "ctac_tlno": "",
        "prdt_type_cd": "300",
        "excg_dvsn_cd": "02",
        "cpbc_ordp_mtrl_dvsn_cd": "",
        "ord_orgno": o.branch,
        "rsvn_ord_end_dt": "",
        "excg_id_dvsn_cd": "KRX",
        "excg_id_dvsn_Cd": "KRX",
        "stpm_cndt_pric": "0",
        "stpm_efct_occr_dtmd": "",
    }


def psbl_rvsecncl_row(o: Order) -> dict[str, str]:
    return {
        "ord_gno_brno": o.branch,
        "odno": o.odno,
        "orgn_odno": o.orgn_odno,
        "ord_dvsn_name": ORD_DVSN_NAMES.get(o.ord_dvsn, ""),
        "pdno": o.symbol,
        "prdt_name": o.symbol_name,
        "rvse_cncl_dvsn_name": _side_name(o) if o.kind is OrderKind.MODIFY else "",
        "ord_qty": str(o.qty),
        "ord_unpr": str(o.price),
        "ord_tmd": o.ord_tmd,
        "tot_ccld_qty": str(o.filled_qty),
        "tot_ccld_amt": str(o.filled_amt),
        "psbl_qty": str(o.remaining),
        "sll_buy_dvsn_cd": "01" if o.side == "SELL" else "02",
        "ord_dvsn_cd": o.ord_dvsn,
        "mgco_aptm_odno": "",
        "excg_dvsn_cd": "02",
        "excg_id_dvsn_cd": "KRX",
        "excg_id_dvsn_name": "한국거래소",
        "stpm_cndt_pric": "0",
        "stpm_efct_occr_yn": "N",
    }


def balance_row(pos: Position, st: SymbolState) -> dict[str, str]:
    price = st.stats.last
    evlu = pos.qty * price
    pfls = evlu - pos.cost
    return {
        "pdno": pos.symbol,
        "prdt_name": pos.name,
        "trad_dvsn_name": "현금",
        "bfdy_buy_qty": str(pos.bfdy_buy_qty),
        "bfdy_sll_qty": str(pos.bfdy_sll_qty),
        "thdt_buyqty": str(pos.thdt_buy_qty),
        "thdt_sll_qty": str(pos.thdt_sll_qty),
        "hldg_qty": str(pos.qty),
        "ord_psbl_qty": str(pos.sellable),
        "pchs_avg_pric": f"{pos.avg_price:.4f}",
        "pchs_amt": str(pos.cost),
        "prpr": str(price),
        "evlu_amt": str(evlu),
        "evlu_pfls_amt": str(pfls),
        "evlu_pfls_rt": pct(pfls, pos.cost),
        "evlu_erng_rt": pct(pfls, pos.cost, 8),
        "loan_dt": "",
        "loan_amt": "0",
        "stln_slng_chgs": "0",
        "expd_dt": "",
        "fltt_rt": pct(price - st.base, st.base, 8),
        "bfdy_cprs_icdc": str(price - st.base),
        "item_mgna_rt_name": "20%",
        "grta_rt_name": "",
        "sbst_pric": str(int(price * 0.7)),
        "stck_loan_unpr": "0.0000",
    }


def balance_summary(acct: Account, today: date, holdings: list[tuple[Position, SymbolState]]) -> dict[str, str]:
    flows = acct.flows.get(today)
    yesterday = acct.flows.get(business_days_before(today, 1))
    evlu = sum(p.qty * st.stats.last for p, st in holdings)
    cost = sum(p.cost for p, _ in holdings)
    d2 = acct.cash
    prior_total = acct.settled_cash(today, 0) - (flows.net if flows else 0)
    total = d2 + evlu
    return {
        "dnca_tot_amt": str(acct.settled_cash(today, 2)),
        "nxdy_excc_amt": str(acct.settled_cash(today, 1)),
        "prvs_rcdl_excc_amt": str(d2),
        "cma_evlu_amt": "0",
        "bfdy_buy_amt": "0",
        "thdt_buy_amt": str(flows.buy_amt if flows else 0),
        "nxdy_auto_rdpt_amt": "0",
        "bfdy_sll_amt": "0",
        "thdt_sll_amt": str(flows.sell_amt if flows else 0),
        "d2_auto_rdpt_amt": "0",
        "bfdy_tlex_amt": str(yesterday.costs if yesterday else 0),
        "thdt_tlex_amt": str(flows.costs if flows else 0),
        "tot_loan_amt": "0",
        "scts_evlu_amt": str(evlu),
        "tot_evlu_amt": str(total),
        "nass_amt": str(total),
        "fncg_gld_auto_rdpt_yn": "",
        "pchs_amt_smtl_amt": str(cost),
        "evlu_amt_smtl_amt": str(evlu),
        "evlu_pfls_smtl_amt": str(evlu - cost),
        "tot_stln_slng_chgs": "0",
        "bfdy_tot_asst_evlu_amt": str(prior_total),
        "asst_icdc_amt": str(total - prior_total),
        "asst_icdc_erng_rt": pct(total - prior_total, prior_total, 8),
    }
