from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from stock_manager.shared.db.migrate import migrate
from stock_manager.shared.db.pool import Pool, open_pool
from tests.support.pg import PgServer, TestDb, find_server, new_name

pytest_plugins = ["tests.ops.browser"]  # the chromium fixtures, for every browser test


@pytest.fixture(scope="session")
def pg_server() -> PgServer:
    return find_server()


@pytest.fixture(scope="session")
def template_db(pg_server: PgServer) -> Iterator[str]:
    name = new_name("sm_tpl")
    janitor = pg_server.janitor(name)
    janitor.init()
    asyncio.run(migrate(pg_server.url(name)))
    try:
        yield name
    finally:
        janitor.drop()


@pytest.fixture
def db(pg_server: PgServer, template_db: str) -> Iterator[TestDb]:
    """A fresh database cloned from the migrated template, dropped after the test."""
    name = new_name("sm_t")
    janitor = pg_server.janitor(name, template=template_db)
    janitor.init()
    try:
        yield TestDb(pg_server, name)
    finally:
        janitor.drop()


@pytest.fixture
async def admin_pool(db: TestDb) -> AsyncIterator[Pool]:
    pool = await open_pool(db.admin_url, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()
