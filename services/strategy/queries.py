"""Strategy's SQL: the named blocks of ``services/strategy/sql/*.sql``."""

from __future__ import annotations

from pathlib import Path

from shared.sql import load_queries

SQL_DIR = Path(__file__).resolve().parent / "sql"
Q = load_queries(*sorted(SQL_DIR.glob("*.sql")))
