"""Named SQL blocks loaded from ``.sql`` files.

A file holds several queries, each introduced by a header line ``-- name: claim_intents``; the
text up to the next header is the query.  Parameters use psycopg's ``%(name)s``.  Keeping SQL in
SQL files means it can be read, linted and EXPLAINed as it runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import LiteralString

from stock_manager.shared.resources import package_path

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


class Queries(Mapping[str, LiteralString]):
    def __init__(self, queries: dict[str, LiteralString], origin: str) -> None:
        self._queries = queries
        self._origin = origin

    def __getitem__(self, name: str) -> LiteralString:
        try:
            return self._queries[name]
        except KeyError:
            raise KeyError(f"no query named {name!r} in {self._origin}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._queries)

    def __len__(self) -> int:
        return len(self._queries)


def parse_queries(text: str, origin: str = "<text>") -> Queries:
    headers = list(_HEADER.finditer(text))
    if not headers:
        raise ValueError(f"{origin}: no '-- name:' headers")
    out: dict[str, LiteralString] = {}
    for i, m in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        body = text[m.end() : end].strip()
        name = m.group(1)
        if name in out:
            raise ValueError(f"{origin}: query {name!r} defined twice")
        if not body:
            raise ValueError(f"{origin}: query {name!r} is empty")
        # Trusted text from our own files: the SQL is fixed, values always travel as parameters.
        out[name] = body
    return Queries(out, origin)


def load_queries(*paths: Path) -> Queries:
    """Load and merge the named queries of one or more ``.sql`` files."""
    merged: dict[str, LiteralString] = {}
    for path in paths:
        for name, q in parse_queries(path.read_text(encoding="utf-8"), str(path)).items():
            if name in merged:
                raise ValueError(f"{path}: query {name!r} already defined")
            merged[name] = q
    return Queries(merged, ", ".join(str(p) for p in paths))


SHARED_SQL_DIR = package_path(__package__, "sql")


def shared_queries() -> Queries:
    """The queries of ``shared/sql/*.sql`` (heartbeats, events, ...)."""
    return load_queries(*sorted(SHARED_SQL_DIR.glob("*.sql")))
