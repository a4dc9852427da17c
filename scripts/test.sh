#!/usr/bin/env bash
# The checks: lint, types, import boundaries, then the tests with coverage (fails below 80 % of
# the lines in shared/ and services/).  Uses the PostgreSQL at 127.0.0.1:5432 when it answers,
# an embedded one otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff"; ruff check --output-format concise .
echo "== mypy --strict"; mypy
echo "== import boundaries"; lint-imports
echo "== pytest"
rm -f .coverage .coverage.*
pytest -q --durations=12 --cov --cov-report=term --cov-fail-under=80 "$@"
