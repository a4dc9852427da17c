"""Start-up recovery: rebuild every position from trade.fills and compare with position_state.

Fills are the truth (Execution reconciles them with the broker); position_state is Strategy's
derived copy.  A difference is repaired and reported (WARN).  Fills that cannot be replayed (more
sold than held) mean the book cannot be trusted: trading is HALTED with the reason, exits still
allowed, until an operator resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from stock_manager.services.strategy import book, ops
from stock_manager.services.strategy.queries import Q
from stock_manager.services.strategy.rules.positions import PositionError
from stock_manager.services.strategy.runtime import Runtime
from stock_manager.shared.locks import Lock, lock_params


@dataclass(frozen=True)
class Recovery:
    ok: bool
    positions: int
    repaired: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None


async def recover(rt: Runtime) -> Recovery:
    now = rt.now()
    try:
        async with rt.pool.connection() as conn:
            pv = await rt.params(conn)
            await conn.execute(Q["positions_gate"], lock_params(Lock.POSITIONS_GATE))
            stored = {r["symbol"]: r for r in await (await conn.execute(Q["all_positions"])).fetchall()}
            with_fills = await (await conn.execute(Q["fill_symbols"])).fetchall()
            symbols = sorted(set(stored) | {r["symbol"] for r in with_fills})
            repaired: list[dict[str, Any]] = []
            open_n = 0
            for sym in symbols:
                pos = await book.replay(conn, sym)
                old = stored.get(sym)
                old_qty = int(old["qty"]) if old else 0
                if old_qty != pos.qty or (old is not None and int(old["fills_count"]) != pos.fills_count):
                    repaired.append({"symbol": sym, "stored_qty": old_qty, "fills_qty": pos.qty,
                                     "stored_fills": int(old["fills_count"]) if old else 0,
                                     "fills": pos.fills_count})
                await book.apply_position(conn, pos, reentry_cooldown_min=pv.params.reentry_cooldown_min,
                                          market_ts=now)
                open_n += 1 if pos.qty > 0 else 0
            mismatched = [r for r in repaired if r["stored_qty"] != r["fills_qty"]]
            if mismatched:
                await ops.emit(conn, "PositionRecovered",
                               f"recovery: {len(mismatched)} positions differed from the fills and were rebuilt",
                               level="WARN", market_ts=now, repaired=mismatched)
            await ops.emit(conn, "RecoveryCompleted",
                           f"recovery: {open_n} open positions rebuilt from fills ({len(symbols)} symbols)",
                           market_ts=now, open_positions=open_n, symbols=len(symbols), repaired=len(mismatched))
        return Recovery(True, open_n, mismatched)
    except PositionError as e:
        reason = f"recovery failed: {e}"
    async with rt.pool.connection() as conn:
        await conn.execute(Q["set_trading_state"], {"state": "HALTED", "reason": reason,
                                                    "changed_by": f"strategy:{rt.instance_id}"})
        await ops.emit(conn, "RecoveryFailed", f"{reason}; trading HALTED (exits still allowed)", level="ERROR",
                       market_ts=now, reason=reason)
    logger.error("{}; trading HALTED", reason)
    return Recovery(False, 0, [], reason)
