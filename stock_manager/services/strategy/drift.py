"""Halt on position drift: the broker's holdings and our fills disagree and nothing explains it.

Execution compares the two (``trade.position_checks``); the verdict DRIFT means a difference outlived
a reconcile pass.  Strategy owns the trading state, so it is Strategy that moves it to HALTED, with
the symbols in the reason the status screen shows.  Entries stop; exits go on (Execution never
blocks them).  A person resolves the difference and resumes; a drift seen again halts again.
"""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from stock_manager.services.strategy import ops
from stock_manager.services.strategy.queries import Q
from stock_manager.services.strategy.runtime import Runtime, trading_state
from stock_manager.shared.position_checks import describe


@dataclass
class DriftGuard:
    rt: Runtime
    seen_check: int = 0

    async def round(self) -> bool:
        """Act on a new DRIFT verdict; True when it halted trading."""
        async with self.rt.pool.connection() as conn:
            row = await (await conn.execute(Q["drift_since"], {"after": self.seen_check})).fetchone()
            if row is None:
                return False
            self.seen_check = int(row["check_id"])
            if row["verdict"] != "DRIFT":
                return False
            state, _ = await trading_state(conn)
            reason = f"POSITION_DRIFT: {describe(row['diffs'])}"
            if state == "HALTED":
                return False
            await conn.execute(Q["set_trading_state"], {"state": "HALTED", "reason": reason,
                                                        "changed_by": f"strategy:{self.rt.instance_id}"})
            await ops.emit(conn, "TradingHalted", f"{reason}; trading HALTED (exits still allowed)", level="ERROR",
                           market_ts=self.rt.now(), reason=reason, check_id=self.seen_check, rule="trading_state")
        logger.error("{}; trading HALTED", reason)
        return True
