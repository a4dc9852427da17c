"""The migration runner: numbered, forward-only ``.sql`` files, one transaction each.

Two processes may migrate at once (``docker compose up`` and ``stock-manager up`` both do): a
session advisory lock serialises them, and the second finds nothing left to do.  A file that was
applied and then edited is refused, because forward-only means a released migration never changes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from stock_manager.db import MIGRATIONS_DIR
from stock_manager.shared.db.pool import connect
from stock_manager.shared.locks import Lock, lock_params

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_ts  timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN_verb_object.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migrations share a version number")
    return found


async def migrate(conninfo: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply what is missing; returns the names applied (empty when already up to date)."""
    migrations = discover(directory)
    applied_now: list[str] = []
    async with await connect(conninfo, autocommit=True) as conn:
        lock = lock_params(Lock.MIGRATIONS)
        await conn.execute("SELECT pg_advisory_lock(%(lock_class)s, %(lock_key)s)", lock)
        try:
            await conn.execute(_BOOTSTRAP)
            cur = await conn.execute("SELECT version, checksum FROM ops.schema_migrations")
            done = {int(r["version"]): str(r["checksum"]) for r in await cur.fetchall()}
            newest = max(done, default=0)
            for m in migrations:
                if m.version in done:
                    if done[m.version] != m.checksum:
                        raise MigrationError(
                            f"migration {m.path.name} changed after it was applied; "
                            "migrations are forward-only: add a new one instead"
                        )
                    continue
                if m.version < newest:
                    raise MigrationError(
                        f"migration {m.path.name} is older than the applied {newest:04d}; "
                        "migrations are forward-only: renumber it after the newest"
                    )
                async with conn.transaction():
                    # A migration file is trusted project text, applied as a whole script.
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO ops.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (m.version, m.name, m.checksum),
                    )
                applied_now.append(m.path.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%(lock_class)s, %(lock_key)s)", lock)
    return applied_now


SERVICE_ROLES = ("sm_pricesync", "sm_strategy", "sm_execution", "sm_readonly", "sm_dashboard")


async def set_role_passwords(conninfo: str, password: str) -> None:
    """Give the service roles a password (needed wherever the server does not trust local users).

    Kept out of the migration files: a secret never belongs in the repository.
    """
    async with await connect(conninfo, autocommit=True) as conn:
        for role in SERVICE_ROLES:
            await conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
