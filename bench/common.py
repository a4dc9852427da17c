"""What the benchmarks share: a scratch database, the simulator and services as real processes."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg

from stock_manager.shared.db.migrate import migrate
from stock_manager.shared.resources import package_path
from tests.support.pg import PgServer, find_server


@contextlib.contextmanager
def scratch_db(prefix: str = "sm_bench") -> Iterator[tuple[PgServer, str]]:
    server = find_server()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        asyncio.run(migrate(server.url(name)))
        yield server, name
    finally:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: Sequence[float]) -> str:
    return (f"p50 {pct(values, 50):.2f}  p99 {pct(values, 99):.2f}  max {max(values):.2f}  "
            f"mean {statistics.fmean(values):.2f}  (n={len(values)})")


def table(title: str, rows: list[tuple[str, str, str]]) -> str:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    out = [title, "-" * len(title), f"{'measure':<{w0}}  {'result':<{w1}}  target"]
    out += [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    return "\n".join(out)


def bench_dir() -> Path:
    d = package_path(__package__, "out")
    d.mkdir(exist_ok=True)
    return d
