"""PostgreSQL access: pools, migrations, LISTEN."""
