"""``stock-manager status`` and the screen ``up`` draws: one terminal screen from the monitor views.

The snapshot comes from ``stock_manager.monitor`` (the same one the dashboard shows); this module
only lays it out.  It holds no settings and no credentials, so there is nothing secret to print.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stock_manager import monitor
from stock_manager.shared.clock import KST
from stock_manager.shared.db.pool import connect
from stock_manager.shared.resources import package_path
from stock_manager.shared.sql import load_queries

Q = load_queries(package_path(__package__, "sql", "status.sql"))
MAX_ROWS = 8  # per table on the terminal screen; the dashboard shows more


async def snapshot(conninfo: str) -> dict[str, Any]:
    async with await connect(conninfo) as conn:
        return await monitor.snapshot(conn)


def _kst(v: str | None, fmt: str = "%H:%M:%S") -> str:
    if not v:
        return "-"
    return datetime.fromisoformat(v).astimezone(KST).strftime(fmt)


def _won(v: Any, sign: bool = True) -> str:
    if v is None:
        return "-"
    return f"{float(v):+,.0f}" if sign else f"{float(v):,.0f}"


def _age(v: Any) -> str:
    if v is None:
        return "-"
    s = float(v)
    if s < 120:
        return f"{s:.1f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


def _price(v: Any) -> str:
    return "-" if v is None else f"{float(v):,.0f}"


def render(snap: dict[str, Any], children: list[dict[str, Any]] | None = None) -> str:
    out: list[str] = []
    st = snap.get("trading_state") or {}
    # two clocks share this screen: the market's (the simulator's in sim mode, any day at any
    # speed) and the wall clock the tables stamp their rows with; every time says which it is
    out.append(f"stock-manager   market time {_kst(st.get('market_now'), '%Y-%m-%d %H:%M:%S')} KST   "
               f"trade date {st.get('trade_date', '-')}   (wall clock {_kst(snap.get('generated_ts'))})")
    out.append(f"trading state: {st.get('state', '?')}  ({st.get('reason') or ''})  "
               f"since {_kst(st.get('changed_ts'))} wall clock by {st.get('changed_by') or '-'}")
    if children is not None:
        out += ["", f"{'process':<12} {'state':<16} {'pid':>7} {'restarts':>8} {'uptime':>8}"]
        out += [f"{c['name']:<12} {c['state']:<16} {c['pid'] or '-':>7} {c['restarts']:>8} {c['uptime_s']:>7.0f}s"
                for c in children]
    out += _services(snap)
    out += _prices(snap)
    out += _orders(snap)
    out += _positions(snap)
    out += _pnl(snap)
    out += _corrections(snap)
    return "\n".join(out)


def _services(snap: dict[str, Any]) -> list[str]:
    out = ["", f"{'service':<12} {'state':<8} {'alive':>5} {'beat age':>9} {'pid':>8} {'market time':>12}"]
    for s in snap.get("services", []):
        flag = "  <- no heartbeat" if s["state"] == "down" else ""
        out.append(f"{s['service']:<12} {s['state']:<8} {s['alive_instances']:>2}/{s['instances']:<2} "
                   f"{_age(s['beat_age_s']):>9} {s['newest_pid'] or '-':>8} {_kst(s['market_ts']):>12}{flag}")
    if not snap.get("services"):
        out.append("(no service has heartbeated yet)")
    return out


def _prices(snap: dict[str, Any]) -> list[str]:
    """Freshness for the symbols a decision rests on; the rest of the universe as coverage.

    Only ~41 symbols stream over the WebSocket and the rest are polled, so most prices are stale
    by design: one "fresh/stale of all" count read as a failure.
    """
    p = snap.get("prices") or {}
    connected = p.get("ws_connected")
    ws = "-" if connected is None else "up" if connected else "down"
    notices = "notices on" if p.get("notices_subscribed") else "notices off"
    closed = "" if p.get("market_open", True) else "   (market closed: no ticks expected)"
    out = ["", f"prices that matter (held, locked, candidates, watch list): {p.get('watched_fresh', 0)} of "
               f"{p.get('watched', 0)} fresh{closed}"]
    stale = [w for w in snap.get("price_watched") or [] if not w["fresh"]]
    if stale:
        out.append("  STALE: " + ", ".join(f"{w['symbol']} ({'/'.join(w['reasons'])}, {_age(w['age_s'])})"
                                            for w in stale[:MAX_ROWS]))
    out.append(f"coverage: {p.get('symbols', 0)} of {p.get('universe', 0)} symbols priced, {p.get('fresh', 0)} "
               f"fresh now (streamed or just polled)   newest {_age(p.get('newest_age_s'))} ago, oldest "
               f"{_age(p.get('oldest_age_s'))}   websocket {ws}, {notices}")
    return out


def _orders(snap: dict[str, Any]) -> list[str]:
    oi, oo = snap.get("open_intents") or {}, snap.get("open_orders") or {}
    out = ["", f"open intents {oi.get('count', 0)} (oldest {_age(oi.get('oldest_age_s'))})   "
               f"open orders {oo.get('count', 0)} (oldest {_age(oo.get('oldest_age_s'))})"]
    for o in (oo.get("rows") or [])[:MAX_ROWS]:
        px = "MKT" if o["order_type"] == "MKT" else f"@{_price(o['limit_price'])}"
        out.append(f"  order {o['order_id']:<6} {o['symbol']:<7} {o['side']:<4} {o['filled_qty']:>6}/{o['qty']:<6} "
                   f"{px:<10} {o['status']:<14} {o['broker_order_no'] or '-':<10} age {_age(o['age_s'])}")
    for i in (oi.get("rows") or [])[:MAX_ROWS]:
        out.append(f"  intent {i['symbol']:<7} {i['side']:<4} {i['qty']:>6} {i['intent_type']:<12} {i['status']:<10} "
                   f"age {_age(i['age_s'])}")
    return out


def _positions(snap: dict[str, Any]) -> list[str]:
    rows = snap.get("positions") or []
    out = ["", f"positions {len(rows)}"]
    if rows:
        out.append(f"  {'symbol':<7} {'qty':>7} {'avg':>10} {'price':>10} {'value':>13} {'unrealized':>11} "
                   f"{'%':>7}  price")
    for p in rows[:MAX_ROWS]:
        fresh = "fresh" if p["price_fresh"] else "STALE"
        pct = "-" if p["unrealized_pct"] is None else f"{float(p['unrealized_pct']):+.2f}"
        out.append(f"  {p['symbol']:<7} {p['qty']:>7} {_price(p['avg_price']):>10} {_price(p['price']):>10} "
                   f"{_won(p['market_value'], sign=False):>13} {_won(p['unrealized_net']):>11} {pct:>7}  {fresh}")
    if len(rows) > MAX_ROWS:
        out.append(f"  ... and {len(rows) - MAX_ROWS} more")
    return out


def _pnl(snap: dict[str, Any]) -> list[str]:
    p = snap.get("pnl") or {}
    lat = next((r for r in snap.get("latency", []) if r["window_name"] == "1h"), None)
    out = ["", f"today's PnL ({p.get('trade_date', '-')}): total {_won(p.get('total'))}   "
               f"realized {_won(p.get('realized'))} ({p.get('round_trips', 0)} trips, {p.get('wins', 0)}W/"
               f"{p.get('losses', 0)}L)   unrealized {_won(p.get('unrealized_net'))} after est. costs",
           f"  fills {p.get('fills', 0)}   bought {_won(p.get('buy_amount'), sign=False)}   sold "
           f"{_won(p.get('sell_amount'), sign=False)}   fees {_won(p.get('fees'), sign=False)}   taxes "
           f"{_won(p.get('taxes'), sign=False)}"]
    if lat and lat["orders"]:
        out.append(f"  intent -> broker ack (1h, {lat['submitted']} orders): p50 {_ms(lat['submit_p50_ms'])}  "
                   f"p90 {_ms(lat['submit_p90_ms'])}  p99 {_ms(lat['submit_p99_ms'])}  max {_ms(lat['submit_max_ms'])}")
    return out


def _ms(v: Any) -> str:
    return "-" if v is None else f"{float(v):.0f}ms"


def _corrections(snap: dict[str, Any]) -> list[str]:
    out: list[str] = []
    conds = snap.get("conditions") or []
    if conds:
        out += ["", "ALERTS NOW"] + [f"  {c['kind']:<14} {c['message']}" for c in conds[:MAX_ROWS]]
    rows = snap.get("corrections") or []
    if rows:
        out += ["", "recent reconciliation corrections"]
        out += [f"  {_stamp(r)} {r['kind']:<20} {r['message'][:80]}" for r in rows[:5]]
    return out


def _stamp(r: dict[str, Any]) -> str:
    """An event's market time when it has one, else its wall time, saying which."""
    return f"{_kst(r['market_ts'])} market" if r.get("market_ts") else f"{_kst(r['ts'])} wall  "
