"""The simulator's own control API (``/sim/*``, CONTRACT.md section 4); never part of KIS.

Tests and the acceptance checks use it to see what the broker really did (orders, fills,
balances) independently of what the system under test believes, and to steer the clock and
the faults.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stock_manager.shared.clock import KST, ScaledClock, kst
from stock_manager.shared.market_rules import phase_at, trade_date

from . import messages as m
from .faults import FaultConfigError
from .listing import STATUS_NAMES, WARN_CODES, Designation
from .market import Interruption
from .orders import Fill, Order
from .sim import Sim

VI_KINDS = ("static", "dynamic")


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(),
        status_code=status,
        media_type="application/json",
    )


def _iso(dt: datetime) -> str:
    return kst(dt).isoformat()


def order_json(o: Order) -> dict[str, Any]:
    return {
        "odno": o.odno,
        "symbol": o.symbol,
        "side": o.side,
        "qty": o.qty,
        "ord_dvsn": o.ord_dvsn,
        "price": o.price,
        "filled_qty": o.filled_qty,
        "status": o.status.value,
        "received_ts": _iso(o.received_at),
        "received_wall": o.received_wall,
        "kind": o.kind.value,
        "orgn_odno": o.orgn_odno,
        "account": o.account,
        "app_key": o.app_key,
        "trade_date": o.trade_date.isoformat(),
        "ord_tmd": o.ord_tmd,
        "branch": o.branch,
        "filled_amt": o.filled_amt,
        "avg_price": round(o.avg_price, 4),
        "remaining_qty": max(0, o.remaining),
        "cancelled_qty": o.cancelled_qty,
        "revised_qty": o.revised_qty,
        "rejected_qty": o.rejected_qty,
        "expired_qty": o.expired_qty,
        "fee": o.fee,
        "tax": o.tax,
        "children": list(o.children),
        "seq": o.seq,
    }


def fill_json(f: Fill) -> dict[str, Any]:
    return {
        "odno": f.odno,
        "exec_seq": f.exec_seq,
        "qty": f.qty,
        "price": f.price,
        "ts": _iso(f.ts),
        "symbol": f.symbol,
        "side": f.side,
        "account": f.account,
        "trade_date": f.trade_date.isoformat(),
        "fee": f.fee,
        "tax": f.tax,
    }


def vi_json(vi: Interruption | None) -> dict[str, Any] | None:
    if vi is None:
        return None
    return {
        "kind": vi.kind,
        "call": vi.call,
        "started": _iso(datetime.fromtimestamp(vi.started, UTC)),
        "ends": _iso(datetime.fromtimestamp(vi.ends, UTC)),
        "trigger_price": vi.trigger,
        "reference_price": vi.reference,
    }


def designation_json(d: Designation) -> dict[str, Any]:
    return {"designation": d.status, "warn_code": d.warning, "liquidation_trading": d.liquidation}


async def _object(request: Request) -> dict[str, Any] | None:
    """The request's JSON object body, or None when it is not one."""
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def routes(sim: Sim) -> list[Route]:
    async def orders(request: Request) -> Response:
        since = request.query_params.get("since_seq", "")
        rows = sim.broker.orders
        if since.isdigit():
            rows = [o for o in rows if o.seq > int(since)]
        account = request.query_params.get("account")
        if account:
            rows = [o for o in rows if o.account == account]
        return _json([order_json(o) for o in rows])

    async def fills(request: Request) -> Response:
        since = request.query_params.get("since_seq", "")
        rows = sim.broker.fills
        if since.isdigit():
            rows = [f for f in rows if f.exec_seq > int(since)]
        return _json([fill_json(f) for f in rows])

    async def balance(request: Request) -> Response:
        broker = sim.broker
        key = request.query_params.get("account")
        if key:
            acct = broker.accounts.get(key)
            if acct is None:
                return _json({"error": f"unknown account {key!r}", "accounts": list(broker.accounts)}, 404)
        elif broker.accounts:
            acct = next(iter(broker.accounts.values()))
        else:
            cash = sim.config.starting_cash
            return _json({"account": None, "cash": cash, "orderable_cash": cash, "holdings": {}, "accounts": []})
        now = broker.clock.now()
        today = trade_date(now)
        holdings: dict[str, Any] = {}
        for pos in acct.positions.values():
            if pos.qty <= 0 and pos.sell_reserved <= 0:
                continue
            st = broker.state(pos.symbol, now.timestamp())
            holdings[pos.symbol] = {
                "qty": pos.qty,
                "sellable_qty": pos.sellable,
                "avg_price": round(pos.avg_price, 4),
                "cost": pos.cost,
                "last_price": st.stats.last,
                "name": pos.name,
            }
        flows = acct.flows.get(today)
        return _json(
            {
                "account": acct.key,
                "cash": acct.cash,
                "orderable_cash": acct.orderable_cash,
                "reserved_cash": acct.reserved,
                "settled_cash": acct.settled_cash(today, 2),
                "today_fees_and_tax": flows.costs if flows else 0,
                "holdings": holdings,
                "accounts": list(broker.accounts),
            }
        )

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = json.loads(await request.body() or b"{}")
            except ValueError:
                return _json({"error": "body must be a JSON object"}, 400)
            if not isinstance(changes, dict):
                return _json({"error": "body must be a JSON object"}, 400)
            try:
                sim.set_faults(changes)
            except FaultConfigError as exc:
                return _json({"error": str(exc)}, 400)
        return _json(sim.faults.as_json())

    async def reset(request: Request) -> Response:
        sim.reset()
        return _json({"ok": True})

    def clock_json() -> dict[str, Any]:
        now = sim.clock.now()
        return {
            "now": _iso(now),
            "speed": sim.clock.speed,
            "phase": phase_at(now).value,
            "trade_date": trade_date(now).isoformat(),
        }

    async def set_clock_from(request: Request, target: ScaledClock) -> Response | None:
        """Apply ``{"at", "speed"}`` to ``target``; an answer only when the body is wrong."""
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            return _json({"error": "body must be a JSON object"}, 400)
        if not isinstance(data, dict) or not set(data) <= {"at", "speed"} or not data:
            return _json({"error": 'expected {"at": ISO 8601 with offset, "speed": number}'}, 400)
        at = None
        if data.get("at") is not None:
            try:
                at = datetime.fromisoformat(str(data["at"]))
            except ValueError:
                return _json({"error": "at must be ISO 8601, e.g. 2026-11-23T09:30:00+09:00"}, 400)
            if at.tzinfo is None:
                at = at.replace(tzinfo=KST)
        speed = data.get("speed")
        if speed is not None and (isinstance(speed, bool) or not isinstance(speed, int | float) or speed <= 0):
            return _json({"error": "speed must be a positive number"}, 400)
        target.set(at, float(speed) if speed is not None else None)
        return None

    async def clock(request: Request) -> Response:
        if request.method == "POST" and (refused := await set_clock_from(request, sim.clock)) is not None:
            return refused
        return _json(clock_json())

    async def wall(request: Request) -> Response:
        """The gateway's own clock, which tokens and approval keys run on (tests move it; KIS's does not)."""
        if not isinstance(sim.wall, ScaledClock):
            return _json({"error": "this simulator's wall clock is injected and cannot be set"}, 409)
        if request.method == "POST" and (refused := await set_clock_from(request, sim.wall)) is not None:
            return refused
        return _json({"now": _iso(sim.wall.now()), "speed": sim.wall.speed})

    async def manual_order(request: Request) -> Response:
        """An order placed on the account as a person would at HTS/MTS: not through the API key,
        though the broker tells the account's notice subscriber about it all the same."""
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            return _json({"error": "body must be a JSON object"}, 400)
        keys = {"account", "symbol", "side", "qty", "ord_dvsn", "price"}
        if not isinstance(data, dict) or not set(data) <= keys or not {"account", "symbol", "side", "qty"} <= set(data):
            return _json({"error": 'expected {"account": "CANO-01", "symbol", "side": BUY|SELL, "qty", '
                                   '"ord_dvsn"?, "price"?}'}, 400)
        acct = sim.broker.accounts.get(str(data["account"]))
        if acct is None or data["side"] not in ("BUY", "SELL"):
            return _json({"error": "unknown account or side"}, 400)
        try:
            accepted = sim.broker.place(acct.app_key, acct.cano, acct.prdt, str(data["symbol"]), data["side"],
                                        str(data.get("ord_dvsn", "01")), str(data["qty"]), str(data.get("price", 0)))
        except m.BizError as e:
            return _json({"error": e.msg.msg1, "msg_cd": e.msg.msg_cd}, 409)
        return _json(order_json(accepted.order))

    async def stats(request: Request) -> Response:
        """Counters of the gateway: requests seen, rate-limit (EGW00201) and real-only (MCA00124)
        answers given, and the requests by TR id."""
        return _json({**sim.stats, "tr_ids": dict(sorted(sim.tr_ids.items()))})

    async def symbols(request: Request) -> Response:
        """The symbol master, as PriceSync loads it in sim mode (KIS itself publishes master files)."""
        return _json(
            {
                "symbols": [
                    {
                        "symbol": s.code,
                        "name": s.name,
                        "market": s.market_name,
                        "base_price": s.prior_close,
                        "prev_high": s.prior_high,
                        "prev_low": s.prior_low,
                        "halted": s.halted,
                        "tier": s.tier,
                        "kospi200": s.code in sim.broker.kospi200,
                        "vi": vi_json(sim.broker.vi_now(s.code)),
                        **designation_json(sim.broker.designation(s.code)),
                    }
                    for s in sim.broker.universe.values()
                ]
            }
        )

    async def vi(request: Request) -> Response:
        """Start a volatility interruption on a symbol now, at its last price (for tests)."""
        data = await _object(request)
        if data is None or set(data) != {"symbol", "kind"} or data["kind"] not in VI_KINDS:
            return _json({"error": 'expected {"symbol": "005930", "kind": "static"|"dynamic"}'}, 400)
        code = str(data["symbol"])
        if code not in sim.broker.universe:
            return _json({"error": f"unknown symbol {code!r}"}, 404)
        now = sim.broker.now_ts()
        started = sim.broker.state(code, now).force_vi(data["kind"], now)
        if started is None:
            return _json({"error": "a VI starts only in continuous trading, on a traded symbol not in one"}, 409)
        return _json({"symbol": code, "vi": vi_json(started)})

    async def designate(request: Request) -> Response:
        """Change a symbol's designations (for tests); omitted fields keep their value, and
        ``iscd_stat_cls_code`` 55 clears the status."""
        data = await _object(request)
        keys = {"symbol", "iscd_stat_cls_code", "mrkt_warn_cls_code", "sltr_yn"}
        if data is None or "symbol" not in data or not set(data) <= keys:
            expected = 'expected {"symbol", "iscd_stat_cls_code"?, "mrkt_warn_cls_code"?, "sltr_yn"?}'
            return _json({"error": expected}, 400)
        code = str(data["symbol"])
        if code not in sim.broker.universe:
            return _json({"error": f"unknown symbol {code!r}"}, 404)
        was = sim.broker.designation(code)
        status = data.get("iscd_stat_cls_code", was.status or "55")
        warning = data.get("mrkt_warn_cls_code", was.warning)
        sltr = data.get("sltr_yn", "Y" if was.liquidation else "N")
        if status not in (*STATUS_NAMES, "55") or warning not in WARN_CODES or sltr not in ("Y", "N"):
            return _json({"error": f"iscd_stat_cls_code one of {[*STATUS_NAMES, '55']} (halts are extra_halted), "
                                   f"mrkt_warn_cls_code one of {sorted(WARN_CODES)}, sltr_yn Y or N"}, 400)
        sim.broker.designate(code, Designation(None if status == "55" else status, warning, sltr == "Y"))
        return _json({"symbol": code, **designation_json(sim.broker.designation(code))})

    return [
        Route("/sim/orders", orders, methods=["GET"]),
        Route("/sim/fills", fills, methods=["GET"]),
        Route("/sim/balance", balance, methods=["GET"]),
        Route("/sim/faults", faults, methods=["GET", "POST"]),
        Route("/sim/reset", reset, methods=["POST"]),
        Route("/sim/clock", clock, methods=["GET", "POST"]),
        Route("/sim/wall", wall, methods=["GET", "POST"]),
        Route("/sim/symbols", symbols, methods=["GET"]),
        Route("/sim/stats", stats, methods=["GET"]),
        Route("/sim/manual-order", manual_order, methods=["POST"]),
        Route("/sim/vi", vi, methods=["POST"]),
        Route("/sim/designate", designate, methods=["POST"]),
    ]
