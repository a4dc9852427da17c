"""Every PostgreSQL advisory lock stock-manager takes, in one place.

Advisory locks are named by numbers that every process (and every version running at once during an
upgrade) must agree on, so the numbers live here and nowhere else: SQL receives them as parameters
(``%(lock_class)s, %(lock_key)s``, see ``lock_params``).  The one exception is a database function, which
cannot take a Python constant; ``market.ensure_tick_partition`` (migration 0024) writes
``TICK_PARTITION``'s pair in its body, and a test reads the function to check it.

All of them use PostgreSQL's two-key form (class, key): the class says "stock-manager", the key
which lock.  The single-key form is a separate key space, so nothing here can meet another
application's single-key locks on a shared server.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

LOCK_CLASS: Final = 7365301  # every application-wide lock
TOKEN_LOCK_CLASS: Final = 7365302  # one lock per app key: the key is hashtext(key_id) in SQL


class Lock(IntEnum):
    ENTRY_GATE = 1  # Strategy: one entry decision at a time, so two workers never both pass the limit
    POSITIONS_GATE = 2  # Strategy: one rebuild of position_state at a time
    LIQUIDATOR = 3  # Strategy: one liquidation round at a time (try-lock)
    ALERT_LOOP = 4  # dashboard: one alert pass at a time, so an alert goes out once (try-lock)
    TICK_PARTITION = 5  # market.ensure_tick_partition: one partition created at a time (in the function)
    MIGRATIONS = 6  # the migration runner: two processes migrating at once apply each file once


def lock_params(lock: Lock) -> dict[str, int]:
    """The query parameters that name ``lock``."""
    return {"lock_class": LOCK_CLASS, "lock_key": int(lock)}


def token_issue_params(key_id: str) -> dict[str, object]:
    """The parameters of the per-app-key token issue lock: its class, and the key id SQL hashes."""
    return {"lock_class": TOKEN_LOCK_CLASS, "key_id": key_id}
