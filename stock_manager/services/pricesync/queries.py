"""PriceSync's SQL, loaded once from ``sql/pricesync.sql`` (named blocks, see ``stock_manager.shared.sql``)."""

from __future__ import annotations

from typing import Final, LiteralString

from stock_manager.shared.resources import package_path
from stock_manager.shared.sql import load_queries

Q = load_queries(package_path(__package__, "sql", "pricesync.sql"))

# Both merges of a batch in one round trip (no parameters: sent as one simple query).
MERGE_BOTH: Final[LiteralString] = Q["merge_prices"] + ";\n" + Q["merge_candles"]
