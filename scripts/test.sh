#!/usr/bin/env bash
# The checks: lint, types, import boundaries, then the tests with coverage (fails below 80 % of
# the lines in shared/ and services/).  Uses the PostgreSQL at 127.0.0.1:5432 when it answers,
# an embedded one otherwise.  A first argument --no-lint skips ruff, mypy and import-linter, which
# answer the same on every interpreter (.ci/run's second, Python 3.13 pass); the other arguments go
# to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
lint=1
if [ "${1:-}" = "--no-lint" ]; then lint=0; shift; fi
if [ "$lint" = 1 ]; then
    echo "== ruff"; ruff check --output-format concise .
    echo "== mypy --strict"; mypy
    echo "== import boundaries"; lint-imports
fi
echo "== pytest ($(python -c 'import platform; print("Python", platform.python_version())'))"
rm -f .coverage .coverage.*
pytest -q --durations=12 --cov --cov-report=term --cov-fail-under=80 "$@"
