"""Prometheus text exposition (format 0.0.4) of the monitor views.

Written by hand: a dozen gauge and counter families need no client library.  Every number comes
from the same snapshot the pages show, so a graph and the screen never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stock_manager.shared import trade_states
from stock_manager.shared.trade_states import OrderStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "stock_manager_"


@dataclass
class Family:
    name: str
    kind: str  # gauge | counter
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: Any, **labels: Any) -> None:
        if value is None:
            return
        self.samples.append(({k: str(v) for k, v in labels.items()}, float(value)))


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)


def exposition(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for f in families:
        name = PREFIX + f.name
        lines.append(f"# HELP {name} {f.help}")
        lines.append(f"# TYPE {name} {f.kind}")
        for labels, value in f.samples:
            sample = name
            if labels:
                sample += "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"
            lines.append(f"{sample} {_number(value)}")
    return "\n".join(lines) + "\n"


STATES = ("ACTIVE", "REDUCING", "HALTED")
ORDER_OPEN = tuple(s.value for s in OrderStatus if s in trade_states.ORDER_OPEN)  # in the lifecycle's order


def families(snap: dict[str, Any], data: dict[str, Any]) -> list[Family]:
    """Metric families from a snapshot (``monitor.snapshot``) and ``monitor.metrics_data``."""
    g: dict[str, Family] = {}

    def fam(name: str, kind: str, text: str) -> Family:
        g[name] = Family(name, kind, text)
        return g[name]

    up = fam("service_up", "gauge", "1 if the service has a live instance (fresh heartbeat), else 0.")
    age = fam("service_beat_age_seconds", "gauge", "Seconds since the service's newest heartbeat.")
    alive = fam("service_alive_instances", "gauge", "Instances of the service with a fresh heartbeat.")
    for s in snap.get("services", []):
        up.add(1 if s["state"] == "alive" else 0, service=s["service"])
        age.add(s["beat_age_s"], service=s["service"])
        alive.add(s["alive_instances"], service=s["service"])

    state = (snap.get("trading_state") or {}).get("state")
    ts = fam("trading_state", "gauge", "1 for the trading state in force (ACTIVE, REDUCING or HALTED).")
    for s in STATES:
        ts.add(1 if s == state else 0, state=s)

    p = snap.get("prices") or {}
    prices = fam("prices", "gauge", "Symbols with a best price, by freshness (fresh needs a live PriceSync).")
    prices.add(p.get("fresh", 0), freshness="fresh")
    prices.add(p.get("stale", 0), freshness="stale")
    # what to alert on: most of the universe is polled and "stale" by design; these are the symbols
    # a decision rests on (held, locked, the newest signals, the watch list)
    watched = fam("prices_watched", "gauge", "Symbols a decision rests on, by the freshness of their price.")
    watched.add(p.get("watched_fresh", 0), freshness="fresh")
    watched.add(p.get("watched_stale", 0), freshness="stale")
    fam("market_open", "gauge", "1 while the regular session runs at the market's time.").add(
        1 if p.get("market_open") else 0)
    fam("price_newest_age_seconds", "gauge", "Seconds since the newest price arrived.").add(p.get("newest_age_s"))
    fam("price_oldest_age_seconds", "gauge", "Seconds since the oldest best price arrived.").add(p.get("oldest_age_s"))

    oi = snap.get("open_intents") or {}
    fam("open_intents", "gauge", "Intents not yet taken up by Execution (NEW or PROCESSING).").add(oi.get("count", 0))
    fam("open_intent_oldest_age_seconds", "gauge", "Age of the oldest open intent.").add(oi.get("oldest_age_s"))
    by_status = {r["status"]: r["count"] for r in data.get("orders_by_status", [])}
    oo = fam("open_orders", "gauge", "Orders still open at the broker or in doubt, by status.")
    for s in ORDER_OPEN:
        oo.add(by_status.get(s, 0), status=s)
    fam("open_order_oldest_age_seconds", "gauge", "Age of the oldest open order.").add(
        (snap.get("open_orders") or {}).get("oldest_age_s"))

    positions = snap.get("positions") or []
    fam("positions", "gauge", "Open positions.").add(len(positions))
    qty = fam("position_qty", "gauge", "Shares held.")
    value = fam("position_market_value_krw", "gauge", "Shares held at the best price, KRW.")
    unreal = fam("position_unrealized_pnl_krw", "gauge",
                 "Unrealized PnL after estimated exit commission and sell tax, KRW.")
    fresh = fam("position_price_fresh", "gauge", "1 if the held symbol's price is fresh.")
    for pos in positions:
        qty.add(pos["qty"], symbol=pos["symbol"])
        value.add(pos["market_value"], symbol=pos["symbol"])
        unreal.add(pos["unrealized_net"], symbol=pos["symbol"])
        fresh.add(1 if pos["price_fresh"] else 0, symbol=pos["symbol"])

    pnl = snap.get("pnl") or {}
    today = fam("pnl_today_krw", "gauge", "Today's PnL (KST trade date), KRW: realized, unrealized (net) and total.")
    for k, col in (("realized", "realized"), ("unrealized", "unrealized_net"), ("total", "total")):
        today.add(pnl.get(col, 0), kind=k)
    fam("round_trips_today", "gauge", "Round trips closed today.").add(pnl.get("round_trips", 0))
    fam("fills_today", "gauge", "Fills today.").add(pnl.get("fills", 0))

    lat = fam("order_latency_seconds", "gauge",
              "Intent -> write-ahead (stage=attempt) and -> broker ack (stage=submit) latency quantiles.")
    n = fam("order_latency_orders", "gauge", "Orders in the latency window.")
    for r in snap.get("latency", []):
        w = r["window_name"]
        n.add(r["orders"], window=w)
        for stage in ("attempt", "submit"):
            for q, col in (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99"), ("1", "max")):
                v = r.get(f"{stage}_{col}_ms")
                lat.add(None if v is None else float(v) / 1000, window=w, stage=stage, quantile=q)

    c = data.get("counters") or {}
    fam("fills_total", "counter", "Fills recorded, all time.").add(c.get("fills_total", 0))
    fam("orders_total", "counter", "Broker orders written, all time.").add(c.get("orders_total", 0))
    fam("intents_total", "counter", "Intents written, all time.").add(c.get("intents_total", 0))
    rec = fam("reconciliation_events_total", "counter", "Reconciliation corrections and findings, by event kind.")
    for kind in ("ReconcileCorrection", "InDoubtResolved", "ReconcileMismatch", "UnknownBrokerOrder"):
        rec.add(next((r["count"] for r in data.get("reconciliation_counts", []) if r["kind"] == kind), 0), kind=kind)
    alerts = fam("alerts", "gauge", "Alerts in monitor.alert_log by status (PENDING, SENT, SUPPRESSED, FAILED).")
    for s in ("PENDING", "SENT", "SUPPRESSED", "FAILED"):
        alerts.add(next((r["count"] for r in data.get("alert_counts", []) if r["status"] == s), 0), status=s)
    conds = fam("alert_conditions", "gauge", "Conditions alerting right now, by kind.")
    for kind in ("TradingHalted", "TradingReducing", "ServiceDown", "StalePrice"):
        conds.add(sum(1 for x in snap.get("conditions", []) if x["kind"] == kind), kind=kind)
    return list(g.values())


def render(snap: dict[str, Any], data: dict[str, Any]) -> str:
    return exposition(families(snap, data))
