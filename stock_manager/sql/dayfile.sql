-- export-day / import-day (stock_manager/dayfile_cmd.py): one KST trade date of market.* as a day
-- file (stock_manager/shared/dayfile.py) and back.  A day is [%(lo)s, %(hi)s): its KST midnights.
-- Reads order each table fully, so that the same rows always make the same file.

-- name: day_source
-- The mode the day was recorded in, as its master says (the most rows, should they differ).
SELECT source FROM market.symbol_days WHERE trade_date = %(day)s GROUP BY source ORDER BY count(*) DESC, source
 LIMIT 1;

-- name: day_symbols
SELECT symbol, name, market, base_price, upper_limit, lower_limit, prev_high, prev_low, prev_volume, halted,
       designation, warn_code, liquidation_trading, kospi200
  FROM market.symbol_days
 WHERE trade_date = %(day)s
 ORDER BY symbol;

-- name: listed_symbols
-- The fallback for a day recorded before market.symbol_days (or without recording): today's master.
SELECT symbol, name, market, base_price, upper_limit, lower_limit, prev_high, prev_low, NULL::bigint AS prev_volume,
       halted, designation, warn_code, liquidation_trading, NULL::boolean AS kospi200
  FROM market.symbols
 WHERE listed
 ORDER BY symbol;

-- name: day_trades
-- Prints at one instant keep their order by the symbol's cumulative volume.
SELECT ts, symbol, price::bigint, qty, side, cum_volume
  FROM market.ticks
 WHERE ts >= %(lo)s AND ts < %(hi)s
 ORDER BY ts, symbol, cum_volume NULLS FIRST, qty, price;

-- name: day_books
SELECT ts, symbol, ask_prices, ask_qtys, bid_prices, bid_qtys, hour_cls_code
  FROM market.books
 WHERE ts >= %(lo)s AND ts < %(hi)s
 ORDER BY ts, symbol, received_ts;

-- name: day_quotes
SELECT ts, received_ts, symbol, price, bid, ask, bid_qty, ask_qty, volume, open, high, low
  FROM market.quotes
 WHERE ts >= %(lo)s AND ts < %(hi)s
 ORDER BY ts, symbol, received_ts;

-- name: day_events
SELECT ts, symbol, kind, state, reference, warn_code, liquidation_trading
  FROM (SELECT ts, symbol, 'VI' AS kind, state, reference, NULL::text AS warn_code,
               NULL::boolean AS liquidation_trading, id
          FROM market.vi_history
         WHERE ts >= %(lo)s AND ts < %(hi)s
        UNION ALL
        SELECT ts, symbol, 'DESIGNATION', designation, NULL, warn_code, liquidation_trading, id
          FROM market.designation_history
         WHERE ts >= %(lo)s AND ts < %(hi)s) e
 ORDER BY ts, symbol, kind, id;

-- name: day_rows
-- Which of the day's tables hold rows already (import refuses them without --replace).
SELECT t.name
  FROM (VALUES ('market.ticks', EXISTS (SELECT 1 FROM market.ticks WHERE ts >= %(lo)s AND ts < %(hi)s)),
               ('market.books', EXISTS (SELECT 1 FROM market.books WHERE ts >= %(lo)s AND ts < %(hi)s)),
               ('market.quotes', EXISTS (SELECT 1 FROM market.quotes WHERE ts >= %(lo)s AND ts < %(hi)s)),
               ('market.symbol_days', EXISTS (SELECT 1 FROM market.symbol_days WHERE trade_date = %(day)s)),
               ('market.vi_history', EXISTS (SELECT 1 FROM market.vi_history WHERE ts >= %(lo)s AND ts < %(hi)s)),
               ('market.designation_history',
                EXISTS (SELECT 1 FROM market.designation_history WHERE ts >= %(lo)s AND ts < %(hi)s)))
       AS t(name, present)
 WHERE t.present;

-- name: lock_days
-- Two imports at once: the second waits for the first's commit, then finds its rows (the mode
-- conflicts with itself; PriceSync's own writes of symbol_days wait while an import runs).
LOCK TABLE market.symbol_days IN SHARE ROW EXCLUSIVE MODE;

-- name: delete_ticks
DELETE FROM market.ticks WHERE ts >= %(lo)s AND ts < %(hi)s;

-- name: delete_books
DELETE FROM market.books WHERE ts >= %(lo)s AND ts < %(hi)s;

-- name: delete_quotes
DELETE FROM market.quotes WHERE ts >= %(lo)s AND ts < %(hi)s;

-- name: delete_symbol_days
DELETE FROM market.symbol_days WHERE trade_date = %(day)s;

-- name: delete_vi_history
DELETE FROM market.vi_history WHERE ts >= %(lo)s AND ts < %(hi)s;

-- name: delete_designation_history
DELETE FROM market.designation_history WHERE ts >= %(lo)s AND ts < %(hi)s;

-- name: ensure_tick_partition
SELECT market.ensure_tick_partition(%(day)s) AS part;

-- name: copy_ticks
-- A day file keeps no receive times for prints: the market time stands in.
COPY market.ticks (ts, symbol, price, qty, side, cum_volume, source, received_ts) FROM STDIN (FORMAT BINARY);

-- name: copy_books
COPY market.books (ts, symbol, ask_prices, ask_qtys, bid_prices, bid_qtys, hour_cls_code, received_ts)
FROM STDIN (FORMAT BINARY);

-- name: copy_quotes
COPY market.quotes (ts, received_ts, symbol, price, bid, ask, bid_qty, ask_qty, volume, open, high, low)
FROM STDIN (FORMAT BINARY);

-- name: copy_symbol_days
COPY market.symbol_days (trade_date, symbol, name, market, base_price, upper_limit, lower_limit, prev_high, prev_low,
                         prev_volume, halted, designation, warn_code, liquidation_trading, kospi200, source)
FROM STDIN (FORMAT BINARY);

-- name: copy_vi_history
COPY market.vi_history (ts, symbol, state, reference, source, received_ts) FROM STDIN (FORMAT BINARY);

-- name: copy_designation_history
COPY market.designation_history (ts, symbol, designation, warn_code, liquidation_trading, received_ts)
FROM STDIN (FORMAT BINARY);
