"""A database of the tests' own for longer than one test: cloned from the migrated template, seeded,
dropped at the end (module-scoped fixtures use it for a process started once against it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.support.pg import PgServer, TestDb, new_name


@contextmanager
def seeded_clone(server: PgServer, template: str, seed: Callable[[str], None]) -> Iterator[TestDb]:
    name = new_name("sm_t")
    janitor = server.janitor(name, template=template)
    janitor.init()
    try:
        db = TestDb(server, name)
        seed(db.admin_url)
        yield db
    finally:
        janitor.drop()
