"""A service body that does not finish soon after it is cancelled is named in the log, task by task,
so a stop the supervisor has to end by force says where it hung."""

from __future__ import annotations

import asyncio
import contextlib

from loguru import logger

from stock_manager.shared.service import _await_stopped


async def test_a_slow_stop_names_the_task_and_where_it_waits() -> None:
    records: list[str] = []
    sink = logger.add(lambda m: records.append(m.record["message"]), level="WARNING")

    async def flush_forever() -> None:
        await asyncio.sleep(0.3)  # a cleanup that takes its time

    async def body() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.shield(asyncio.create_task(flush_forever(), name="final-flush"))

    try:
        work = asyncio.create_task(body(), name="body")
        await asyncio.sleep(0)
        work.cancel()
        await _await_stopped("pricesync", work, report_after_s=0.05)
    finally:
        logger.remove(sink)
    assert work.done()
    (line,) = [r for r in records if "still stopping" in r]
    assert line.startswith("pricesync still stopping after 0.1s: ")
    assert "final-flush at test_service_stop.py" in line and "flush_forever" in line


async def test_a_prompt_stop_says_nothing() -> None:
    records: list[str] = []
    sink = logger.add(lambda m: records.append(m.record["message"]), level="WARNING")
    try:
        work = asyncio.create_task(asyncio.sleep(3600))
        await asyncio.sleep(0)
        work.cancel()
        await _await_stopped("strategy", work, report_after_s=0.5)
    finally:
        logger.remove(sink)
    with contextlib.suppress(asyncio.CancelledError):
        await work
    assert records == []
