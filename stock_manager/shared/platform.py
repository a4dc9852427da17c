"""Everything that differs between Windows and POSIX, in one module.

Seed 003 runs the system on Windows; development and CI run on Linux.  Keeping every call that
exists on only one of them here (``tests/unit/test_platform_scan.py`` fails when one appears
anywhere else in ``stock_manager/``) means the rest of the code is portable by construction, and a
port to a new platform reads one file.

How ``up`` stops its children does not use signals at all, because Windows has no SIGTERM a
process can catch from another one: the supervisor closes the child's standard input and the
child, seeing end-of-file, stops as it would on Ctrl-C (``watch_stdin_close``).  A child that does
not stop within the grace is killed with its process tree (``kill_tree``).  Signals remain what a
user or a container runtime sends to a single process (``on_stop_signals``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

IS_WINDOWS = sys.platform == "win32"

# Set by the supervisor for its children: end-of-file on stdin means "stop cleanly".  Only then,
# since a service run by hand or by docker may have a closed stdin from the start.
STOP_ON_STDIN_CLOSE = "SM_STOP_ON_STDIN_CLOSE"


def use_selector_event_loop() -> None:
    """psycopg's async connections need a selector loop; Windows' default (proactor) has none.

    Called once at the entry point, so every ``asyncio.run`` in the process gets one.  (Python
    3.14 deprecates event-loop policies; when 3.16 removes them this becomes a ``loop_factory``.)
    """
    if sys.platform == "win32":
        asyncio.set_event_loop_policy(asyncio.WindowsSelectorEventLoopPolicy())


def on_stop_signals(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    """Call ``stop`` on the loop when the process gets Ctrl-C (or SIGTERM, where there is one)."""
    if sys.platform == "win32":
        def handler(_sig: int, _frame: object) -> None:
            call_soon_if_running(loop, stop)

        for sig in (signal.SIGINT, signal.SIGBREAK):
            signal.signal(sig, handler)
    else:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)


def stop_on_stdin_close_wanted() -> bool:
    return os.environ.get(STOP_ON_STDIN_CLOSE) == "1"


def watch_stdin_close(stop: Callable[[], None]) -> threading.Thread:
    """Call ``stop`` (from a thread: make it thread-safe) once standard input reaches end-of-file.

    A thread, because reading a pipe without blocking needs a different API on each platform and
    the selector loop on Windows cannot watch pipes at all.  Whatever is written is discarded.
    """
    def read_to_eof() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        stop()

    thread = threading.Thread(target=read_to_eof, name="stdin-stop", daemon=True)
    thread.start()
    return thread


def call_soon_if_running(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    """``fn`` on ``loop`` from another thread; nothing if the loop has already closed (stdin can
    close while the process is on its way out)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn)


def detached_child_options() -> dict[str, Any]:
    """``subprocess``/``asyncio`` keyword arguments that keep Ctrl-C in the terminal from reaching a
    child: the supervisor alone gets it and stops the children in order."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def kill_tree(pid: int) -> None:
    """Kill a child at once, with whatever it started (the last resort after the grace)."""
    if sys.platform == "win32":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)],  # noqa: S603, S607
                       check=False, capture_output=True)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def kill_hard(pid: int) -> None:
    """Kill one process without letting it clean up, as a crash would (the soak's fault)."""
    if sys.platform == "win32":
        os.kill(pid, signal.SIGTERM)  # TerminateProcess: no handler runs
    else:
        os.kill(pid, signal.SIGKILL)


def lock_exclusive(fd: int) -> bool:
    """Take a non-blocking exclusive lock on an open file; False when another process holds it.

    The lock goes with the process, so a killed holder frees it.
    """
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
