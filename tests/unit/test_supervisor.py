"""The supervisor with real child processes: a killed child comes back, the others never stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from stock_manager.supervisor import ChildSpec, Supervisor

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(1)"]


async def _wait_for(cond: object, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not cond():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_kill_9_of_one_child_restarts_it_and_leaves_the_others(tmp_path: Path) -> None:
    # the sleepers do not follow the stop protocol: a short grace, then they are killed
    sup = Supervisor([ChildSpec(n, SLEEPER) for n in ("a", "b", "c")], log_dir=tmp_path, min_backoff_s=0.2,
                     grace_s=0.5)
    task = asyncio.create_task(sup.run())
    await _wait_for(lambda: all(c.pid for c in sup.children))
    a, b, c = sup.children
    pids = (a.pid, b.pid, c.pid)
    os.kill(b.pid, signal.SIGKILL)  # type: ignore[arg-type]
    await _wait_for(lambda: b.pid is not None and b.pid != pids[1])
    assert (a.pid, c.pid) == (pids[0], pids[2]) and b.restarts == 1 and b.last_exit == -9
    sup.request_stop()
    await asyncio.wait_for(task, 15)
    assert all(ch.proc is not None and ch.proc.returncode is not None for ch in sup.children)


async def test_a_crash_loop_backs_off(tmp_path: Path) -> None:
    sup = Supervisor([ChildSpec("crash", [sys.executable, "-c", "raise SystemExit(3)"])], log_dir=tmp_path,
                     min_backoff_s=0.1, max_backoff_s=0.4)
    task = asyncio.create_task(sup.run())
    await _wait_for(lambda: sup.children[0].restarts >= 4, 15)
    assert sup.children[0].backoff_s == 0.4 and sup.children[0].last_exit == 3
    sup.request_stop()
    await asyncio.wait_for(task, 10)


async def test_a_child_that_ignores_the_stop_protocol_and_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    stubborn = [sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "print('ready', flush=True)\nwhile True: time.sleep(1)"]
    sup = Supervisor([ChildSpec("stubborn", stubborn)], log_dir=tmp_path, grace_s=0.5)
    task = asyncio.create_task(sup.run())
    await _wait_for(lambda: (tmp_path / "stubborn.log").read_text().strip() == "ready")
    sup.request_stop()
    await asyncio.wait_for(task, 10)
    assert sup.children[0].proc is not None and sup.children[0].proc.returncode == -9
