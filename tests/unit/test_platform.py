"""The stop protocol between ``up`` and its children, with real processes (no database needed)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from stock_manager.shared import platform
from stock_manager.supervisor import ChildSpec, Supervisor

# a child that stops only by the protocol: it writes "stopped" once stdin closes, then exits 0
OBEYS = """
import asyncio, sys
from stock_manager.shared import platform

async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    platform.on_stop_signals(loop, stop.set)
    if platform.stop_on_stdin_close_wanted():
        platform.watch_stdin_close(lambda: platform.call_soon_if_running(loop, stop.set))
    print("ready", flush=True)
    await stop.wait()
    print("stopped", flush=True)

asyncio.run(main())
"""
# a child that never stops on its own
STUCK = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(1)\n"


def _spec(name: str, code: str, log_dir: Path) -> ChildSpec:
    log = log_dir / f"{name}.log"
    return ChildSpec(name, [sys.executable, "-c", code], {"PYTHONPATH": os.getcwd()},
                     ready=lambda: log.exists() and b"ready" in log.read_bytes())


async def test_closing_stdin_stops_a_child_cleanly_and_in_reverse_order(tmp_path: Path) -> None:
    sup = Supervisor([_spec("a", OBEYS, tmp_path), _spec("b", OBEYS, tmp_path)], log_dir=tmp_path, grace_s=20)
    await sup.start_all()
    assert all(c.pid for c in sup.children)
    t0 = time.monotonic()
    await sup.stop_all()
    assert time.monotonic() - t0 < 10, "a clean stop must not wait for the grace"
    for c in sup.children:
        assert c.proc is not None and c.proc.returncode == 0
        assert (tmp_path / f"{c.spec.name}.log").read_bytes().split() == [b"ready", b"stopped"]


async def test_a_child_that_ignores_the_protocol_is_killed_after_the_grace(tmp_path: Path) -> None:
    sup = Supervisor([_spec("stuck", STUCK, tmp_path)], log_dir=tmp_path, grace_s=1)
    await sup.start_all()
    t0 = time.monotonic()
    await sup.stop_all()
    proc = sup.children[0].proc
    assert proc is not None and proc.returncode not in (None, 0)
    assert 1 <= time.monotonic() - t0 < 10


async def test_a_child_without_the_protocol_flag_ignores_stdin(tmp_path: Path) -> None:
    """Run by hand or by docker (stdin closed from the start), a service must not stop at once."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop(platform.STOP_ON_STDIN_CLOSE, None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", OBEYS, env=env,
                                                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    assert (await proc.stdout.readline()).strip() == b"ready"
    await asyncio.sleep(0.5)
    assert proc.returncode is None
    proc.terminate()  # SIGTERM: the signal path still stops it cleanly
    assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"stopped\n"
    assert await proc.wait() == 0


def test_children_are_kept_out_of_the_terminals_ctrl_c() -> None:
    opts = platform.detached_child_options()
    if platform.IS_WINDOWS:
        assert set(opts) == {"creationflags"}
    else:
        assert opts == {"start_new_session": True}


def test_the_exclusive_lock_is_held_by_one_opener_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    first = os.open(path, os.O_RDWR | os.O_CREAT)
    second = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        assert platform.lock_exclusive(first)
        assert not platform.lock_exclusive(second)
    finally:
        os.close(first)
    try:
        assert platform.lock_exclusive(second)
    finally:
        os.close(second)


def test_children_stop_by_themselves_when_the_supervisor_dies(tmp_path: Path) -> None:
    """kill -9 of ``up`` closes its end of every child's stdin: the children stop, none is orphaned."""
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from stock_manager.supervisor import ChildSpec, Supervisor\n"
        f"spec = ChildSpec('obeys', [sys.executable, '-c', {OBEYS!r}])\n"
        f"asyncio.run(Supervisor([spec], log_dir=Path({str(tmp_path)!r}), grace_s=30).run())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    sup = subprocess.Popen([sys.executable, "-c", script], env=env)
    log = tmp_path / "obeys.log"
    try:
        deadline = time.monotonic() + 20
        while not (log.exists() and b"ready" in log.read_bytes()):
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.1)
    finally:
        sup.kill()  # SIGKILL: the supervisor runs no cleanup at all
        sup.wait()
    deadline = time.monotonic() + 10
    while b"stopped" not in log.read_bytes():
        assert time.monotonic() < deadline, "the child outlived its supervisor"
        time.sleep(0.1)
