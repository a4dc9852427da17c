"""Settings of one simulator instance.

Defaults follow ``kis-api-facts.md``: the numbers a real KIS account would show (20 req/s real,
2 req/s paper, 41 WebSocket registrations, 1 token per minute), so code developed against the
simulator meets the same limits it will meet in production.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from stock_manager.shared.market_rules import DEFAULT_COMMISSION_RATE, Fees, parse_fee_schedule
from stock_manager.shared.settings import SettingsError

Env = Literal["real", "paper"]


def fees_from_env() -> Fees:
    """The fees the product is told the account pays (KIS_FEE_SCHEDULE, else KIS_COMMISSION_RATE).

    The simulator charges what Execution expects, read from the same settings by the same parser,
    so a difference between our costs and the balance's is a bug to look at, not configuration.
    """
    text = os.environ.get("KIS_FEE_SCHEDULE", "")
    if text:
        try:
            return parse_fee_schedule(text)
        except ValueError as e:
            raise SettingsError(f"setting KIS_FEE_SCHEDULE is malformed: {e}") from None
    rate = os.environ.get("KIS_COMMISSION_RATE", "")
    try:
        return Decimal(rate) if rate else DEFAULT_COMMISSION_RATE
    except InvalidOperation:
        raise SettingsError("setting KIS_COMMISSION_RATE is malformed: not a number") from None


@dataclass
class SimConfig:
    env: Env = "real"
    seed: int = 20260101
    universe_size: int = 2500
    starting_cash: int = 100_000_000
    commission_rate: Fees = field(default_factory=fees_from_env)
    # None means the KIS default of the environment (real 20/s, paper 2/s); 0 switches it off.
    rate_limit_per_s: float | None = None
    token_ttl_s: int = 86_400
    token_reuse_window_s: int = 6 * 3600
    token_min_interval_s: int = 60
    # KIS's portal: an approval key (WebSocket) is valid for 24 hours.
    approval_ttl_s: int = 86_400
    # Wall-clock seconds: PINGPONG keeps sockets alive, it is not market time.
    pingpong_interval_s: float = 10.0
    pingpong_timeout_s: float = 60.0
    ws_max_registrations: int = 41
    # None = now; the market clock starts here and runs at clock_speed.
    clock_start: datetime | None = None
    clock_speed: float = 1.0
    # Wall seconds a request is held by the timeout / lost-response faults if the client stays.
    fault_hold_s: float = 120.0
    # Wall seconds between market ticks (prints, resting-order fills, WebSocket frames).
    tick_interval_s: float = 0.1
    # Branch (KRX_FWDG_ORD_ORGNO) of a real account; paper always answers 00950.
    real_branch: str = "06010"
    account_name: str = "김한투"
    # Fill-notice layout: 26 fields (current) or 23 (the workbook's own example, pre-2025-03).
    notice_fields: Literal[23, 26] = 26
    # H0STASP0 layout: 62 fields as observed on the real server, or the documented 59.
    asking_price_fields: Literal[59, 62] = 62
    odno_start: int = 1
    extra_halted: tuple[str, ...] = field(default_factory=tuple)
    # A folder of real KIS master files (kospi_code.mst.zip, kosdaq_code.mst.zip): the universe is
    # their listed shares (universe.universe_from_master) instead of universe_size seeded ones.
    master_dir: Path | None = None
    # A day file (shared/dayfile.py) to play as the market instead of the synthetic one (replay.py):
    # its symbols are the universe and the clock starts at 08:00 of its trade date unless told otherwise.
    replay: Path | None = None

    @property
    def effective_rate_limit(self) -> float | None:
        """Requests per second per app key, or None when unlimited."""
        value = self.rate_limit_per_s
        if value is None:
            value = 20.0 if self.env == "real" else 2.0
        return value if value > 0 else None

    @property
    def ccld_page_rows(self) -> int:
        return 100 if self.env == "real" else 15

    @property
    def balance_page_rows(self) -> int:
        return 50 if self.env == "real" else 20

    @property
    def branch(self) -> str:
        return self.real_branch if self.env == "real" else "00950"
