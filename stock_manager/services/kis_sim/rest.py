"""KIS REST endpoints: OAuth, hashkey, orders, account queries and quotations.

One wrapper (``_kis``) does what the KIS gateway does before any service runs: token check,
per-app-key rate limit, injected faults, TR-id check.  The handlers then only read the request
and call the broker.  Business rejections are HTTP 200 with rt_cd != "0"; gateway errors are
HTTP 500 with an EGW/OPSQ code; OAuth errors use error_code/error_description.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stock_manager.shared.clock import KST, kst
from stock_manager.shared.market_rules import affordable_qty, session_on, trade_date

from . import kis_format as fmt
from . import messages as m
from .auth import AuthError, OAuthError
from .orders import PRICELESS, Order
from .sim import Sim
from .universe import Symbol

Body = dict[str, Any]
Handler = Callable[["Call"], Awaitable["Reply"]]

ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"
REVISE_PATH = "/uapi/domestic-stock/v1/trading/order-rvsecncl"
CCLD_PATH = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"
BALANCE_PATH = "/uapi/domestic-stock/v1/trading/inquire-balance"
PSBL_ORDER_PATH = "/uapi/domestic-stock/v1/trading/inquire-psbl-order"
PSBL_RVSE_PATH = "/uapi/domestic-stock/v1/trading/inquire-psbl-rvsecncl"
PRICE_PATH = "/uapi/domestic-stock/v1/quotations/inquire-price"
ASKING_PATH = "/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn"
CHART_PATH = "/uapi/domestic-stock/v1/quotations/inquire-time-itemchartprice"
RANK_PATH = "/uapi/domestic-stock/v1/quotations/volume-rank"
SEARCH_INFO_PATH = "/uapi/domestic-stock/v1/quotations/search-info"
HOLIDAY_PATH = "/uapi/domestic-stock/v1/quotations/chk-holiday"

_JSON = "application/json; charset=utf-8"
_BLANK100 = " " * 100


def _paper(tr: str) -> str:
    """KIS's paper rule: a TR starting with T, J or C starts with V instead."""
    return "V" + tr[1:] if tr[:1] in ("T", "J", "C") else tr


@dataclass(slots=True)
class Reply:
    body: Body
    tr_cont: str = ""
    status: int = 200


@dataclass(slots=True)
class Call:
    sim: Sim
    request: Request
    app_key: str
    tr_id: str
    params: dict[str, str]  # query keys upper-cased
    body: Body


def _dumps(body: Body) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _respond(body: Body, status: int = 200, tr_id: str = "", tr_cont: str = "") -> Response:
    headers = {"tr_id": tr_id, "tr_cont": tr_cont} if tr_id else {}
    return Response(_dumps(body), status_code=status, media_type=_JSON, headers=headers)


def _err(msg: m.Msg) -> Body:
    return {"rt_cd": msg.rt_cd, "msg_cd": msg.msg_cd, "msg1": msg.msg1}


def _ok(msg: m.Msg, **parts: Any) -> Body:
    body: Body = dict(parts)
    body.update(_err(msg))
    return body


async def _hold(request: Request, seconds: float) -> Response:
    """Answer nothing until the client gives up (disconnects) or ``seconds`` pass."""

    async def disconnected() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), seconds)
    return Response(b"", status_code=504)


async def _json_body(request: Request) -> Body | None:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _require(source: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """The named fields as strings; a missing (or non-string) one is KIS's OPSQ2001."""
    out: dict[str, str] = {}
    for name in names:
        value = source.get(name)
        if not isinstance(value, str):
            raise m.BizError(m.missing_field(name), 500)
        out[name] = value
    return out


def _kis(
    sim: Sim,
    path: str,
    tr_ids: dict[str, str],
    handler: Handler,
    *,
    method: str,
    real_only: bool = False,
) -> Route:
    """Wrap a handler in the gateway checks. ``tr_ids`` maps accepted real TR ids to a meaning."""
    paper_ids = {_paper(tr): meaning for tr, meaning in tr_ids.items()}

    async def endpoint(request: Request) -> Response:
        headers = request.headers
        tr_id = headers.get("tr_id", "")
        try:
            app_key = sim.auth.check(headers.get("authorization"), headers.get("appkey"), headers.get("appsecret"))
        except AuthError as exc:
            return _respond(_err(exc.msg), exc.status, tr_id)
        faults = sim.faults
        sim.stats["requests"] += 1
        sim.tr_ids[tr_id] += 1
        if not sim.limiter.allow(app_key, faults.rate_limit_per_s):
            sim.stats["rate_limited"] += 1
            return _respond(_err(m.RATE_LIMIT), 500, tr_id)
        faulty = faults.applies_to(path)
        if faulty:
            if sim.dice.hit(faults.http_500_rate):
                return _respond(_err(m.GATEWAY_ERROR), 500, tr_id)
            if sim.dice.hit(faults.egw00201_rate):
                return _respond(_err(m.RATE_LIMIT), 500, tr_id)
            if sim.dice.hit(faults.timeout_rate):
                return await _hold(request, faults.hold_s)
        env_ids = tr_ids if sim.config.env == "real" else paper_ids
        if real_only and sim.config.env == "paper":
            sim.stats["service_not_found"] += 1
            return _respond(_err(m.SERVICE_NOT_FOUND), 500, tr_id)
        if tr_id not in env_ids:
            return _respond(_err(m.NO_SERVICE_CODE), 500, tr_id)
        body: Body = {}
        if method == "POST":
            parsed = await _json_body(request)
            if parsed is None:
                return _respond(_err(m.missing_field("BODY")), 500, tr_id)
            body = parsed
        params = {k.upper(): v for k, v in request.query_params.items()}
        call = Call(sim, request, app_key, tr_id, params, body)
        try:
            reply = await handler(call)
        except m.BizError as exc:
            return _respond(_err(exc.msg), exc.status, tr_id)
        if faulty and sim.dice.hit(faults.lost_response_rate):
            return await _hold(request, faults.hold_s)
        return _respond(reply.body, reply.status, tr_id, reply.tr_cont)

    return Route(path, endpoint, methods=[method])


# ---------------------------------------------------------------------------------- orders

ORDER_TRS = {"TTTC0012U": "BUY", "TTTC0802U": "BUY", "TTTC0011U": "SELL", "TTTC0801U": "SELL"}
REVISE_TRS = {"TTTC0013U": "", "TTTC0803U": ""}


def _order_output(o: Order) -> Body:
    return {"KRX_FWDG_ORD_ORGNO": o.branch, "ODNO": o.odno, "ORD_TMD": o.ord_tmd}


async def order_cash(call: Call) -> Reply:
    side = ORDER_TRS[call.tr_id if call.sim.config.env == "real" else "T" + call.tr_id[1:]]
    f = _require(call.body, ("CANO", "ACNT_PRDT_CD", "PDNO", "ORD_DVSN", "ORD_QTY", "ORD_UNPR"))
    accepted = call.sim.broker.place(
        call.app_key,
        f["CANO"],
        f["ACNT_PRDT_CD"],
        f["PDNO"],
        "BUY" if side == "BUY" else "SELL",
        f["ORD_DVSN"],
        f["ORD_QTY"],
        f["ORD_UNPR"],
    )
    return Reply(_ok(accepted.msg, output=_order_output(accepted.order)))


async def order_rvsecncl(call: Call) -> Reply:
    f = _require(
        call.body,
        (
            "CANO",
            "ACNT_PRDT_CD",
            "KRX_FWDG_ORD_ORGNO",
            "ORGN_ODNO",
            "ORD_DVSN",
            "RVSE_CNCL_DVSN_CD",
            "ORD_QTY",
            "ORD_UNPR",
            "QTY_ALL_ORD_YN",
        ),
    )
    accepted = call.sim.broker.revise(
        call.app_key,
        f["CANO"],
        f["ACNT_PRDT_CD"],
        f["ORGN_ODNO"],
        f["RVSE_CNCL_DVSN_CD"],
        f["ORD_DVSN"],
        f["ORD_QTY"],
        f["ORD_UNPR"],
        f["QTY_ALL_ORD_YN"].upper() == "Y",
    )
    return Reply(_ok(accepted.msg, output=_order_output(accepted.order)))


# ---------------------------------------------------------------------------------- paging


def _page_cont(more: bool, continued: bool) -> str:
    if more:
        return "M" if continued else "F"
    return "E" if continued else "D"


def _page_msg(more: bool, continued: bool) -> m.Msg:
    if more:
        return m.QUERY_MORE
    return m.QUERY_LAST if continued else m.QUERY_OK


def _ctx(value: str) -> str:
    return value.ljust(100)[:100]


CCLD_FIELDS = (
    "CANO",
    "ACNT_PRDT_CD",
    "INQR_STRT_DT",
    "INQR_END_DT",
    "SLL_BUY_DVSN_CD",
    "INQR_DVSN",
    "CCLD_DVSN",
    "CTX_AREA_FK100",
    "CTX_AREA_NK100",
)


async def inquire_daily_ccld(call: Call) -> Reply:
    q = _require(call.params, CCLD_FIELDS)
    broker = call.sim.broker
    acct = broker.account(call.app_key, q["CANO"], q["ACNT_PRDT_CD"])
    start, end = q["INQR_STRT_DT"] or "00000000", q["INQR_END_DT"] or "99999999"
    side = {"01": "SELL", "02": "BUY"}.get(q["SLL_BUY_DVSN_CD"])
    pdno = call.params.get("PDNO", "").strip()
    odno_filter = call.params.get("ODNO", "").strip()
    ccld = q["CCLD_DVSN"]
    newest_first = q["INQR_DVSN"] != "01"

    def match(o: Order) -> bool:
        d = fmt.ymd(o.trade_date)
        if not start <= d <= end:
            return False
        if side and o.side != side:
            return False
        if pdno and o.symbol != pdno:
            return False
        if odno_filter and (not odno_filter.isdigit() or int(odno_filter) != int(o.odno)):
            return False
        if ccld == "01" and o.filled_qty == 0:
            return False
        return not (ccld == "02" and not o.live)

    orders = acct.orders
    seqs = [o.seq for o in orders]
    key = q["CTX_AREA_NK100"].strip()
    continued = bool(key) and call.request.headers.get("tr_cont", "") == "N"
    after: int | None = None
    if continued:
        d, _, no = key.partition("^")
        day = _parse_ymd(d)
        last = broker.find_order(day, no.strip("^ ")) if day else None
        after = last.seq if last is not None else None
    if newest_first:
        hi = bisect_left(seqs, after) if after is not None else len(orders)
        candidates = (orders[i] for i in range(hi - 1, -1, -1))
    else:
        lo = bisect_right(seqs, after) if after is not None else 0
        candidates = (orders[i] for i in range(lo, len(orders)))
    page = call.sim.config.ccld_page_rows
    rows: list[Order] = []
    more = False
    for o in candidates:
        if match(o):
            if len(rows) == page:
                more = True
                break
            rows.append(o)
    everything = [o for o in orders if match(o)]
    filled_qty = sum(o.filled_qty for o in everything)
    filled_amt = sum(o.filled_amt for o in everything)
    costs = sum(o.fee + o.tax for o in everything)
    output2 = {
        "tot_ord_qty": str(sum(o.qty for o in everything)),
        "tot_ccld_qty": str(filled_qty),
        "tot_ccld_amt": str(filled_amt),
        "prsm_tlex_smtl": str(costs),
        "pchs_avg_pric": f"{(filled_amt / filled_qty if filled_qty else 0):.4f}",
    }
    fk = f"{q['CANO']}^{q['ACNT_PRDT_CD']}^{start}^{end}^{pdno or ' '}^{q['SLL_BUY_DVSN_CD']}^{ccld}^"
    nk = f"{fmt.ymd(rows[-1].trade_date)}^{rows[-1].odno}^" if more and rows else ""
    body = _ok(
        _page_msg(more, continued),
        ctx_area_fk100=_ctx(fk),
        ctx_area_nk100=_ctx(nk),
        output1=[fmt.daily_ccld_row(o) for o in rows],
        output2=output2,
    )
    return Reply(body, _page_cont(more, continued))


def _parse_ymd(s: str) -> date | None:
    try:
        return datetime.strptime(s, "%Y%m%d").replace(tzinfo=KST).date()
    except ValueError:
        return None


BALANCE_FIELDS = (
    "CANO",
    "ACNT_PRDT_CD",
    "AFHR_FLPR_YN",
    "INQR_DVSN",
    "UNPR_DVSN",
    "FUND_STTL_ICLD_YN",
    "FNCG_AMT_AUTO_RDPT_YN",
    "PRCS_DVSN",
    "CTX_AREA_FK100",
    "CTX_AREA_NK100",
)


async def inquire_balance(call: Call) -> Reply:
    q = _require(call.params, BALANCE_FIELDS)
    broker = call.sim.broker
    acct = broker.account(call.app_key, q["CANO"], q["ACNT_PRDT_CD"])
    now = broker.clock.now()
    today = trade_date(now)
    ts = now.timestamp()
    positions = acct.visible_positions(today)
    key = q["CTX_AREA_NK100"].strip().strip("^")
    continued = bool(key) and call.request.headers.get("tr_cont", "") == "N"
    start = bisect_right([p.symbol for p in positions], key) if continued else 0
    page = call.sim.config.balance_page_rows
    chunk = positions[start : start + page]
    more = start + page < len(positions)
    all_rows = [(p, broker.state(p.symbol, ts)) for p in positions]
    states = dict((p.symbol, st) for p, st in all_rows)
    fk = (
        f"{q['CANO']}^{q['ACNT_PRDT_CD']}^{q['AFHR_FLPR_YN']}^{q['FUND_STTL_ICLD_YN']}^"
        f"{q['INQR_DVSN']}^{q['UNPR_DVSN']}^{q['FNCG_AMT_AUTO_RDPT_YN']}^"
    )
    nk = f"{chunk[-1].symbol}^" if more and chunk else ""
    body = _ok(
        _page_msg(more, continued),
        ctx_area_fk100=_ctx(fk),
        ctx_area_nk100=_ctx(nk),
        output1=[fmt.balance_row(p, states[p.symbol]) for p in chunk],
        output2=[fmt.balance_summary(acct, today, all_rows)],
    )
    return Reply(body, _page_cont(more, continued))


async def inquire_psbl_order(call: Call) -> Reply:
    q = _require(
        call.params,
        ("CANO", "ACNT_PRDT_CD", "PDNO", "ORD_UNPR", "ORD_DVSN", "CMA_EVLU_AMT_ICLD_YN", "OVRS_ICLD_YN"),
    )
    broker = call.sim.broker
    acct = broker.account(call.app_key, q["CANO"], q["ACNT_PRDT_CD"])
    if q["PDNO"] not in broker.universe:
        raise m.BizError(m.NO_SYMBOL)
    st = broker.state(q["PDNO"])
    if q["ORD_DVSN"] in PRICELESS:
        unit = st.upper
    elif q["ORD_UNPR"].isdigit() and int(q["ORD_UNPR"]) > 0:
        unit = int(q["ORD_UNPR"])
    else:
        unit = st.stats.last
    cash = max(0, acct.orderable_cash)
    qty = affordable_qty(cash, unit, call.sim.config.commission_rate)
    output = {
        "ord_psbl_cash": str(cash),
        "ord_psbl_sbst": "0",
        "ruse_psbl_amt": "0",
        "fund_rpch_chgs": "0",
        "psbl_qty_calc_unpr": str(unit),
        "nrcvb_buy_amt": str(qty * unit),
        "nrcvb_buy_qty": str(qty),
        "max_buy_amt": str(qty * unit),
        "max_buy_qty": str(qty),
        "cma_evlu_amt": "0",
        "ovrs_re_use_amt_wcrc": "0",
        "ord_psbl_frcr_amt_wcrc": "0",
    }
    return Reply(_ok(m.QUERY_OK, output=output))


async def inquire_psbl_rvsecncl(call: Call) -> Reply:
    q = _require(
        call.params, ("CANO", "ACNT_PRDT_CD", "CTX_AREA_FK100", "CTX_AREA_NK100", "INQR_DVSN_1", "INQR_DVSN_2")
    )
    broker = call.sim.broker
    acct = broker.account(call.app_key, q["CANO"], q["ACNT_PRDT_CD"])
    today = trade_date(broker.clock.now())
    side = {"1": "SELL", "2": "BUY"}.get(q["INQR_DVSN_2"])
    open_orders = [o for o in acct.orders if o.trade_date == today and o.live and (not side or o.side == side)]
    if q["INQR_DVSN_1"] == "1":
        open_orders.sort(key=lambda o: (o.symbol, o.seq))
    key = q["CTX_AREA_NK100"].strip().strip("^")
    continued = bool(key) and call.request.headers.get("tr_cont", "") == "N"
    start = 0
    if continued:
        for i, o in enumerate(open_orders):
            if o.odno == key:
                start = i + 1
                break
    page = 50
    chunk = open_orders[start : start + page]
    more = start + page < len(open_orders)
    body = _ok(
        _page_msg(more, continued),
        ctx_area_fk100=_ctx(f"{q['CANO']}^{q['ACNT_PRDT_CD']}^"),
        ctx_area_nk100=_ctx(f"{chunk[-1].odno}^" if more and chunk else ""),
        output=[fmt.psbl_rvsecncl_row(o) for o in chunk],
    )
    return Reply(body, _page_cont(more, continued))


# ---------------------------------------------------------------------------------- quotations


def _symbol(call: Call) -> str:
    q = _require(call.params, ("FID_COND_MRKT_DIV_CODE", "FID_INPUT_ISCD"))
    allowed = ("J", "NX", "UN") if call.sim.config.env == "real" else ("J",)
    if q["FID_COND_MRKT_DIV_CODE"].upper() not in allowed:
        raise m.BizError(m.missing_field("FID_COND_MRKT_DIV_CODE"), 500)
    code = q["FID_INPUT_ISCD"].strip()
    if code not in call.sim.broker.universe:
        raise m.BizError(m.NO_SYMBOL)
    return code


async def inquire_price(call: Call) -> Reply:
    st = call.sim.broker.state(_symbol(call))
    return Reply(_ok(m.QUOTE_OK, output=fmt.inquire_price(st)))


# the book each symbol's last answer showed, for the next answer's *_rsqn_icdc
_ASKED_BOOKS = fmt.BookChanges()


async def inquire_asking_price(call: Call) -> Reply:
    st = call.sim.broker.state(_symbol(call))
    out1, out2 = fmt.asking_price(st, _ASKED_BOOKS)
    return Reply(_ok(m.QUOTE_OK, output1=out1, output2=out2))


async def inquire_chart(call: Call) -> Reply:
    code = _symbol(call)
    q = _require(call.params, ("FID_INPUT_HOUR_1", "FID_PW_DATA_INCU_YN"))
    st = call.sim.broker.state(code)
    until = q["FID_INPUT_HOUR_1"].strip() or kst(call.sim.clock.now()).strftime("%H%M%S")
    out1, out2 = fmt.chart(st, until)
    return Reply(_ok(m.QUOTE_OK, output1=out1, output2=out2))


async def volume_rank(call: Call) -> Reply:
    q = _require(
        call.params,
        (
            "FID_COND_MRKT_DIV_CODE",
            "FID_COND_SCR_DIV_CODE",
            "FID_INPUT_ISCD",
            "FID_DIV_CLS_CODE",
            "FID_BLNG_CLS_CODE",
            "FID_TRGT_CLS_CODE",
            "FID_TRGT_EXLS_CLS_CODE",
            "FID_INPUT_PRICE_1",
            "FID_INPUT_PRICE_2",
            "FID_VOL_CNT",
        ),
    )
    broker = call.sim.broker
    ts = broker.now_ts()
    lo = int(q["FID_INPUT_PRICE_1"]) if q["FID_INPUT_PRICE_1"].isdigit() else 0
    hi = int(q["FID_INPUT_PRICE_2"]) if q["FID_INPUT_PRICE_2"].isdigit() else 0
    min_vol = int(q["FID_VOL_CNT"]) if q["FID_VOL_CNT"].isdigit() else 0
    excl = q["FID_TRGT_EXLS_CLS_CODE"].ljust(10, "0")
    div = q["FID_DIV_CLS_CODE"]
    market = {"0001": "KOSPI", "1001": "KOSDAQ"}.get(q["FID_INPUT_ISCD"])
    blng = q["FID_BLNG_CLS_CODE"]

    def rank_key(sym: Symbol, volume: int, price: int, prior_volume: int) -> float:
        if blng == "1":
            return volume / max(1, prior_volume)
        if blng in ("2", "4"):
            return volume / max(1, sym.listed_shares)
        if blng == "3":
            return float(volume * price)
        return float(volume)

    # Untouched symbols are ranked on their expected volume and simulated only if they make the
    # cut, so a scan of 2,500 names does not simulate 2,500 trading days.
    scored: list[tuple[float, str]] = []
    for code, sym in broker.universe.items():
        preferred = code.endswith("5")
        if (div == "1" and preferred) or (div == "2" and not preferred):
            continue
        if (excl[4] == "1" and preferred) or (excl[5] == "1" and sym.halted):
            continue
        if market and sym.market_name != market:
            continue
        known = broker.states.get(code)
        if known is not None:
            known.advance(ts)
            volume, price, prior = known.stats.volume, known.stats.last, known.prior_volume
        else:
            volume, price, prior = broker.expected_volume(sym, ts), sym.prior_close, sym.prior_volume
        if (lo and price < lo) or (hi and price > hi) or volume < min_vol:
            continue
        scored.append((rank_key(sym, volume, price, prior), code))
    scored.sort(reverse=True)
    rows = []
    for _, code in scored[:40]:
        st = broker.state(code, ts)
        if (lo and st.stats.last < lo) or (hi and st.stats.last > hi) or st.stats.volume < min_vol:
            continue
        rows.append(st)
    rows.sort(key=lambda st: rank_key(st.sym, st.stats.volume, st.stats.last, st.prior_volume), reverse=True)
    output = [fmt.volume_rank_row(i + 1, st) for i, st in enumerate(rows[:30])]
    return Reply(_ok(m.RANK_OK, output=output))


# chk-holiday answers this many days from BASS_DT on (one page; KIS was measured answering 24)
HOLIDAY_DAYS = 24


async def chk_holiday(call: Call) -> Reply:
    """국내휴장일조회 from the installed calendar (KRX's, as the market follows it).

    Real KIS only: paper answers CTCA0903R with OPSQ0002, as a client measured in 2026 (it has no
    paper twin).  The four flags are one here, whether the market opens that day; KIS's own
    business and settlement days can differ from it (a bank holiday the exchange keeps, 12-31).
    """
    q = _require(call.params, ("BASS_DT",))
    try:
        start = datetime.strptime(q["BASS_DT"], "%Y%m%d").date()  # noqa: DTZ007 (a date only)
    except ValueError:
        raise m.BizError(m.missing_field("BASS_DT"), 500) from None
    rows = []
    for day in (start + timedelta(days=n) for n in range(HOLIDAY_DAYS)):
        yn = "Y" if session_on(day) is not None else "N"
        rows.append({"bass_dt": day.strftime("%Y%m%d"), "wday_dvsn_cd": f"{day.isoweekday() % 7 + 1:02d}",
                     "bzdy_yn": yn, "tr_day_yn": yn, "opnd_yn": yn, "sttl_day_yn": yn})
    return Reply(_ok(m.QUERY_OK, ctx_area_nk="", ctx_area_fk="", output=rows))


async def search_info(call: Call) -> Reply:
    q = _require(call.params, ("PDNO", "PRDT_TYPE_CD"))
    sym = call.sim.broker.universe.get(q["PDNO"].strip())
    if sym is None or q["PRDT_TYPE_CD"] != "300":
        return Reply(_ok(m.NO_DATA))
    return Reply(_ok(m.QUERY_OK, output=fmt.search_info(sym)))


# ---------------------------------------------------------------------------------- oauth


def _oauth(sim: Sim, path: str, action: Callable[[Body], Body]) -> Route:
    async def endpoint(request: Request) -> Response:
        body = await _json_body(request)
        if body is None:
            return _respond({"error_description": "잘못된 요청입니다.", "error_code": "EGW00002"}, 400)
        try:
            return _respond(action(body))
        except OAuthError as exc:
            return _respond(exc.body, exc.status)

    return Route(path, endpoint, methods=["POST"])


def _s(body: Body, key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


async def _hashkey(request: Request) -> Response:
    body = await _json_body(request)
    if body is None:
        return _respond(_err(m.missing_field("BODY")), 500)
    digest = hashlib.sha256(_dumps(body)).hexdigest()
    return _respond({"BODY": body, "HASH": digest})


def routes(sim: Sim) -> list[Route]:
    auth = sim.auth
    return [
        _oauth(sim, "/oauth2/tokenP", lambda b: auth.issue_token(_s(b, "appkey"), _s(b, "appsecret"))),
        _oauth(sim, "/oauth2/revokeP", lambda b: auth.revoke(_s(b, "appkey"), _s(b, "appsecret"), _s(b, "token"))),
        _oauth(sim, "/oauth2/Approval", lambda b: auth.approval(_s(b, "appkey"), _s(b, "secretkey"))),
        Route("/uapi/hashkey", _hashkey, methods=["POST"]),
        _kis(sim, ORDER_PATH, ORDER_TRS, order_cash, method="POST"),
        _kis(sim, REVISE_PATH, REVISE_TRS, order_rvsecncl, method="POST"),
        _kis(
            sim,
            CCLD_PATH,
            {"TTTC0081R": "", "TTTC8001R": "", "CTSC9215R": "", "CTSC9115R": ""},
            inquire_daily_ccld,
            method="GET",
        ),
        _kis(sim, BALANCE_PATH, {"TTTC8434R": ""}, inquire_balance, method="GET"),
        _kis(sim, PSBL_ORDER_PATH, {"TTTC8908R": ""}, inquire_psbl_order, method="GET"),
        _kis(
            sim,
            PSBL_RVSE_PATH,
            {"TTTC0084R": "", "TTTC8036R": ""},
            inquire_psbl_rvsecncl,
            method="GET",
            real_only=True,
        ),
        _kis(sim, PRICE_PATH, {"FHKST01010100": ""}, inquire_price, method="GET"),
        _kis(sim, ASKING_PATH, {"FHKST01010200": ""}, inquire_asking_price, method="GET"),
        _kis(sim, CHART_PATH, {"FHKST03010200": ""}, inquire_chart, method="GET"),
        _kis(sim, RANK_PATH, {"FHPST01710000": ""}, volume_rank, method="GET", real_only=True),
        _kis(sim, SEARCH_INFO_PATH, {"CTPF1604R": ""}, search_info, method="GET", real_only=True),
        _kis(sim, HOLIDAY_PATH, {"CTCA0903R": ""}, chk_holiday, method="GET"),
    ]
