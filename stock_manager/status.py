"""What ``up`` shows while it runs and ``stock-manager status`` prints: health read from the tables."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from shared.db.pool import connect
from shared.sql import load_queries

Q = load_queries(Path(__file__).resolve().parent / "sql" / "status.sql")
STALE_AFTER_S = 20.0


async def snapshot(conninfo: str) -> dict[str, Any]:
    async with await connect(conninfo) as conn:
        beats = await (await conn.execute(Q["heartbeats"])).fetchall()
        state = await (await conn.execute(Q["trading_state"])).fetchone()
        counts = await (await conn.execute(Q["counts"])).fetchone()
    return {"heartbeats": beats, "trading_state": state, "counts": counts}


def _ts(v: datetime | None) -> str:
    return v.strftime("%H:%M:%S") if v is not None else "-"


def render(snap: dict[str, Any], children: list[dict[str, Any]] | None = None) -> str:
    lines: list[str] = []
    state = snap.get("trading_state") or {}
    lines.append(f"trading state: {state.get('state', '?')}  ({state.get('reason') or ''})")
    if children is not None:
        lines.append("")
        lines.append(f"{'process':<12} {'state':<16} {'pid':>7} {'restarts':>8} {'uptime':>8}")
        for c in children:
            lines.append(
                f"{c['name']:<12} {c['state']:<16} {c['pid'] or '-':>7} {c['restarts']:>8} {c['uptime_s']:>7.0f}s"
            )
    lines.append("")
    lines.append(f"{'service':<12} {'instance':<28} {'status':<9} {'beat age':>9} {'market time':>12}")
    for b in snap.get("heartbeats", []):
        age = float(b["age_s"])
        flag = "" if age < STALE_AFTER_S or b["status"] == "STOPPED" else "  <- no heartbeat"
        lines.append(
            f"{b['service']:<12} {b['instance_id'][:28]:<28} {b['status']:<9} {age:>8.1f}s "
            f"{_ts(b['market_ts']):>12}{flag}"
        )
    c = snap.get("counts") or {}
    lines.append("")
    lines.append(
        f"open intents {c.get('open_intents', 0)}   open orders {c.get('open_orders', 0)}   "
        f"positions {c.get('positions', 0)}   prices fresh/stale {c.get('fresh_prices', 0)}/{c.get('stale_prices', 0)}"
    )
    return "\n".join(lines)
