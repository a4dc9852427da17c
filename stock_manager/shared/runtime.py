"""Process-level tuning for every service: the event loop and the garbage collector.

At 20,000 prints a second (PriceSync) or hundreds of orders a second (Execution) the asyncio
machinery itself is a noticeable share of a core; uvloop (it comes with ``uvicorn[standard]``)
takes about a tenth off.  ``SM_UVLOOP=0`` keeps the standard loop.  uvloop does not exist on
Windows (``uvicorn[standard]`` leaves it out there), so there the selector loop that
``stock_manager.shared.platform.use_selector_event_loop`` chose stays.

Every print allocates a handful of short-lived objects that reference counting frees at once.
With the default thresholds the cyclic collector still runs hundreds of times a minute, and when
the writer falls behind for a moment (a slow commit) the backlog makes those collections longer,
which makes the backlog longer: the benchmark showed pauses of up to 100 ms.  Freezing what exists
after start-up and collecting the young generation less often breaks that loop.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys

# Young-generation threshold: objects allocated (net) between two collections.
GC_GEN0 = 50_000


def uvloop_wanted() -> bool:
    return os.environ.get("SM_UVLOOP", "1").strip().lower() not in ("0", "false", "no", "off")


def install_uvloop() -> bool:
    """Make ``asyncio.run`` (as ``stock_manager.shared.service.run_service`` calls it) use uvloop."""
    if not uvloop_wanted() or sys.platform == "win32":
        return False
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def tune_gc() -> None:
    """Call once start-up is done: long-lived objects out of the collector's way, fewer young sweeps."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0, gen1, gen2)
