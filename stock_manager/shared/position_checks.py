"""How a difference between our positions and the broker's reads, wherever it is shown.

Execution writes the differences (``trade.position_checks.diffs``: symbol, broker_qty, our_qty) and
its events; Strategy puts them in the HALTED reason.  One wording, so the status screen, the alert
and the event say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def describe(diffs: Sequence[Mapping[str, Any]], limit: int = 5) -> str:
    parts = [f"{d['symbol']} broker {d['broker_qty']} / ours {d['our_qty']}" for d in diffs[:limit]]
    more = f" and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return ", ".join(parts) + more
