"""PriceSync's SQL, loaded once from ``sql/pricesync.sql`` (named blocks, see ``shared.sql``)."""

from __future__ import annotations

from pathlib import Path
from typing import Final, LiteralString

from shared.sql import load_queries

Q = load_queries(Path(__file__).resolve().parent / "sql" / "pricesync.sql")

# Both merges of a batch in one round trip (no parameters: sent as one simple query).
MERGE_BOTH: Final[LiteralString] = Q["merge_prices"] + ";\n" + Q["merge_candles"]
