"""The database's shape: numbered, forward-only migrations (``db/migrations/NNNN_verb_object.sql``)."""

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
