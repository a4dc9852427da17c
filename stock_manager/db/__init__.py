"""The database's shape: numbered, forward-only migrations (``db/migrations/NNNN_verb_object.sql``)."""

from stock_manager.shared.resources import package_path

MIGRATIONS_DIR = package_path(__package__, "migrations")
