from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ops.seed import seed_day
from tests.support.pg import PgServer, TestDb, new_name


@pytest.fixture
def seeded(db: TestDb) -> TestDb:
    """A fresh database holding one trading day (tests/ops/seed.py)."""
    seed_day(db.admin_url)
    return db


@pytest.fixture(scope="module")
def seeded_module(pg_server: PgServer, template_db: str) -> Iterator[TestDb]:
    """The same day, shared by a module's tests (for the ones that start a process against it)."""
    name = new_name("sm_t")
    janitor = pg_server.janitor(name, template=template_db)
    janitor.init()
    try:
        db = TestDb(pg_server, name)
        seed_day(db.admin_url)
        yield db
    finally:
        janitor.drop()
