"""The embedded PostgreSQL that ``up`` uses when ``DATABASE_URL`` is unset (the ``pgserver`` package).

Its data lives under ``./.stock-manager/pgdata`` and survives restarts; it stops when ``up`` exits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DB_NAME = "stock_manager"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the server; returns the admin URL of the ``stock_manager`` database."""
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(self.data_dir / "pgdata", cleanup_mode="stop")
        params = {k: v for k, v in conninfo_to_dict(self._server.get_uri()).items() if v not in ("", None)}
        with psycopg.connect(make_conninfo("", **params), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
        params["dbname"] = DB_NAME
        return make_conninfo("", **params)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
