"""Runs each service as its own OS process and keeps it running.

A child that dies is restarted after a backoff that doubles up to a ceiling and resets once the
child has stayed up for a while, so a crash loop cannot spin.  The others are never touched.
Ctrl-C (or SIGTERM) stops the children in reverse start order by the stop protocol of
``stock_manager.shared.platform``: the supervisor closes the child's stdin, the child drains and
exits, and one still running after the grace is killed with its process tree.  No signal crosses
between processes, so Windows and POSIX stop the same way and the Linux tests cover both.  If the
supervisor itself dies, the children's stdin closes with it and they stop rather than linger.

Children are plain ``subprocess.Popen`` objects polled from the loop, not asyncio subprocesses:
on Windows those need the proactor loop, and the supervisor's process also reads the database
through psycopg, which needs the selector loop there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from stock_manager.shared import platform


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None  # start the next child only once this answers True


@dataclass
class Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_mono: float = 0.0
    backoff_s: float = 0.0
    next_start_mono: float = 0.0
    last_exit: int | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def state(self) -> str:
        if self.pid is not None:
            return "running"
        if self.next_start_mono > time.monotonic():
            return f"restart in {self.next_start_mono - time.monotonic():.0f}s"
        return "stopped"

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_mono if self.pid is not None else 0.0


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        log_dir: Path,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        stable_after_s: float = 60.0,
        grace_s: float = 10.0,
    ) -> None:
        self.children = [Child(s) for s in specs]
        self._log_dir = log_dir
        self._min_backoff = min_backoff_s
        self._max_backoff = max_backoff_s
        self._stable_after = stable_after_s
        self._grace = grace_s
        self._stopping = asyncio.Event()
        log_dir.mkdir(parents=True, exist_ok=True)
        # one append-only log per child, open for the supervisor's whole life
        self._logs: dict[str, IO[bytes]] = {
            s.name: open(log_dir / f"{s.name}.log", "ab") for s in specs  # noqa: SIM115
        }

    def request_stop(self) -> None:
        self._stopping.set()

    async def _spawn(self, child: Child) -> None:
        log = self._logs[child.spec.name]
        env = {**os.environ, **child.spec.env, platform.STOP_ON_STDIN_CLOSE: "1"}
        # stdin is the stop line (closed: stop); Ctrl-C reaches the supervisor only

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(  # noqa: S603 (argv is ours: sys.executable -m stock_manager ...)
                list(child.spec.argv), env=env, stdout=log, stderr=log, stdin=subprocess.PIPE,
                **platform.detached_child_options(),
            )

        child.proc = await asyncio.to_thread(start)
        child.started_mono = time.monotonic()

    async def start_all_of(self, n: int, ready_timeout_s: float = 30.0) -> None:
        """Start the first ``n`` children (those not started yet), each once the one before is ready."""
        for child in self.children[:n]:
            if self._stopping.is_set():
                return
            if child.proc is not None:
                continue
            await self._spawn(child)
            if child.spec.ready is not None:
                deadline = time.monotonic() + ready_timeout_s
                # readiness is a port or file to poll, not an event anyone could set
                while not child.spec.ready() and time.monotonic() < deadline and child.pid is not None:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)

    async def start_all(self, ready_timeout_s: float = 30.0) -> None:
        await self.start_all_of(len(self.children), ready_timeout_s)

    async def run(self) -> None:
        """Start everything, keep it running until asked to stop, then stop everything."""
        try:
            await self.start_all()
            while not self._stopping.is_set():
                await self._tend()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 0.2)
        finally:
            await self.stop_all()

    async def _tend(self) -> None:
        now = time.monotonic()
        for child in self.children:
            proc = child.proc
            if proc is not None and proc.poll() is not None and child.next_start_mono == 0.0:
                child.last_exit = proc.returncode
                ran = now - child.started_mono
                child.backoff_s = (
                    self._min_backoff if ran >= self._stable_after or child.backoff_s == 0
                    else min(child.backoff_s * 2, self._max_backoff)
                )
                child.next_start_mono = now + child.backoff_s
                _note(f"{child.spec.name} exited with {proc.returncode}; restarting in {child.backoff_s:.0f}s")
            elif child.next_start_mono and now >= child.next_start_mono:
                child.next_start_mono = 0.0
                child.restarts += 1
                await self._spawn(child)

    async def stop_all(self) -> None:
        for child in reversed(self.children):
            child.next_start_mono = 0.0
            proc = child.proc
            if proc is None or proc.poll() is not None:
                continue
            ask_to_stop(proc)
            if not await _exited(proc, self._grace):
                _note(f"{child.spec.name} still running {self._grace:.0f}s after being asked to stop; killing it")
                platform.kill_tree(proc.pid)
                await asyncio.to_thread(proc.wait)
        for log in self._logs.values():
            log.close()


def ask_to_stop(proc: subprocess.Popen[bytes]) -> None:
    """Close the child's stdin: the stop protocol's one message."""
    if proc.stdin is not None and not proc.stdin.closed:
        with contextlib.suppress(OSError):
            proc.stdin.close()


async def _exited(proc: subprocess.Popen[bytes], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    # an exit is polled, as the loop polls everything else about its children
    while proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return proc.poll() is not None


def _note(text: str) -> None:
    print(f"[supervisor] {text}", file=sys.stderr, flush=True)
