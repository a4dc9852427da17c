"""Strategy's SQL: the named blocks of ``services/strategy/sql/*.sql``."""

from __future__ import annotations

from stock_manager.shared.resources import package_path
from stock_manager.shared.sql import load_queries

SQL_DIR = package_path(__package__, "sql")
Q = load_queries(*sorted(SQL_DIR.glob("*.sql")))
