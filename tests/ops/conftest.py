from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ops.seed import seed_day
from tests.support.clone import seeded_clone
from tests.support.pg import PgServer, TestDb


@pytest.fixture
def seeded(db: TestDb) -> TestDb:
    """A fresh database holding one trading day (tests/ops/seed.py)."""
    seed_day(db.admin_url)
    return db


@pytest.fixture(scope="module")
def seeded_module(pg_server: PgServer, template_db: str) -> Iterator[TestDb]:
    """The same day, shared by a module's tests (for the ones that start a process against it)."""
    with seeded_clone(pg_server, template_db, seed_day) as db:
        yield db
