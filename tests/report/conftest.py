from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.report.seed import seed_report_day
from tests.support.clone import seeded_clone
from tests.support.pg import PgServer, TestDb


@pytest.fixture
def report_db(db: TestDb) -> TestDb:
    """A fresh database holding the reportable day (tests/report/seed.py)."""
    seed_report_day(db.admin_url)
    return db


@pytest.fixture(scope="module")
def report_module_db(pg_server: PgServer, template_db: str) -> Iterator[TestDb]:
    """The same day, shared by a module's tests (for the ones that start a dashboard against it)."""
    with seeded_clone(pg_server, template_db, seed_report_day) as db:
        yield db
