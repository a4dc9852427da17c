-- PriceSync's queries.  Per batch: ticks by binary COPY straight into market.ticks; prices and
-- partial bars by binary COPY into per-connection staging tables, then one merge each; the rare
-- rest (freshness changes, order books, symbols) as column arrays through unnest().

-- name: upsert_symbols
INSERT INTO market.symbols AS s (symbol, name, market, base_price, upper_limit, lower_limit, prev_high, prev_low,
                                 halted, designation, warn_code, liquidation_trading, listed, trade_date,
                                 updated_ts)
SELECT u.symbol, u.name, u.market, u.base_price, u.upper_limit, u.lower_limit, u.prev_high, u.prev_low,
       u.halted, u.designation, u.warn_code, u.liquidation_trading, true, %(trade_date)s, clock_timestamp()
  FROM unnest(%(symbol)b::text[], %(name)b::text[], %(market)b::text[], %(base_price)b::bigint[],
              %(upper_limit)b::bigint[], %(lower_limit)b::bigint[], %(prev_high)b::bigint[],
              %(prev_low)b::bigint[], %(halted)b::boolean[], %(designation)b::text[], %(warn_code)b::text[],
              %(liquidation_trading)b::boolean[])
       AS u(symbol, name, market, base_price, upper_limit, lower_limit, prev_high, prev_low, halted, designation,
            warn_code, liquidation_trading)
ON CONFLICT (symbol) DO UPDATE
   SET name = EXCLUDED.name,
       market = EXCLUDED.market,
       base_price = coalesce(EXCLUDED.base_price, s.base_price),
       upper_limit = coalesce(EXCLUDED.upper_limit, s.upper_limit),
       lower_limit = coalesce(EXCLUDED.lower_limit, s.lower_limit),
       prev_high = coalesce(EXCLUDED.prev_high, s.prev_high),
       prev_low = coalesce(EXCLUDED.prev_low, s.prev_low),
       halted = EXCLUDED.halted,
       designation = EXCLUDED.designation,
       warn_code = EXCLUDED.warn_code,
       liquidation_trading = EXCLUDED.liquidation_trading,
       listed = true,
       trade_date = EXCLUDED.trade_date,
       updated_ts = EXCLUDED.updated_ts;

-- name: delist_missing
UPDATE market.symbols
   SET listed = false, updated_ts = clock_timestamp()
 WHERE listed AND NOT (symbol = ANY (%(symbol)b::text[]));

-- name: known_symbols
SELECT symbol, name, market, base_price, prev_high, prev_low, halted, designation, warn_code, liquidation_trading
  FROM market.symbols
 WHERE listed
 ORDER BY symbol;

-- name: set_status
-- A halt or a designation an inquire-price answer says changed during the day.
UPDATE market.symbols
   SET halted = %(halted)s::boolean, designation = %(designation)s::text, warn_code = %(warn_code)s::text,
       liquidation_trading = %(liquidation_trading)s::boolean, updated_ts = clock_timestamp()
 WHERE symbol = %(symbol)s
   AND (halted, designation, warn_code, liquidation_trading)
       IS DISTINCT FROM (%(halted)s::boolean, %(designation)s::text, %(warn_code)s::text,
                         %(liquidation_trading)s::boolean);

-- name: watch_set
-- What Strategy's tables say to watch, as (symbol, class, rank): 0 held, 1 locked or worked,
-- 2 recently signalled, 3 watch list.  Lower rank first within a class.
SELECT symbol, 0 AS cls, row_number() OVER (ORDER BY entry_ts NULLS LAST, symbol)::int AS rank
  FROM trade.position_state
 WHERE qty > 0
UNION ALL
SELECT symbol, 1, row_number() OVER (ORDER BY locked_ts, symbol)::int
  FROM trade.symbol_locks
UNION ALL
SELECT current_symbol, 1, (1000 + row_number() OVER (ORDER BY worker_id))::int
  FROM trade.workers
 WHERE current_symbol IS NOT NULL AND status <> 'IDLE'
UNION ALL
SELECT symbol, 2, row_number() OVER (ORDER BY score DESC NULLS LAST, seen DESC, symbol)::int
  FROM (SELECT DISTINCT ON (symbol) symbol, score, coalesce(market_ts, scanned_ts) AS seen
          FROM trade.candidates
         WHERE signal AND coalesce(market_ts, scanned_ts) > %(candidates_since)s
         ORDER BY symbol, coalesce(market_ts, scanned_ts) DESC) c
UNION ALL
SELECT symbol, 3, row_number() OVER (ORDER BY priority DESC, added_ts, symbol)::int
  FROM trade.watchlist
 WHERE expires_ts IS NULL OR expires_ts > %(now)s;

-- name: ensure_tick_partition
SELECT market.ensure_tick_partition(%(day)s) AS part;

-- name: copy_ticks
COPY market.ticks (symbol, ts, price, qty, cum_volume, cum_turnover, side, source, received_ts)
FROM STDIN (FORMAT BINARY);

-- name: prepare_writer
-- The ingest writer's session.  synchronous_commit off: a commit is visible to every reader at
-- once but does not wait for its WAL to reach the disk, so a slow or busy disk cannot hold
-- prices back; a crash of the database server may lose the last fraction of a second of ticks,
-- which is market data the feed keeps sending (broker notices keep the default).  Staging tables:
-- a batch's prices and partial bars arrive by binary COPY (cheap to produce) and are merged with
-- one statement each.
SET synchronous_commit = off;
CREATE TEMP TABLE IF NOT EXISTS prices_in (
    symbol text, price numeric, bid numeric, ask numeric, bid_qty bigint, ask_qty bigint, volume bigint,
    turnover numeric, change_pct numeric, open numeric, high numeric, low numeric, prev_close numeric,
    prev_high numeric, prev_low numeric, source text, ts timestamptz, received_ts timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS candles_in (
    symbol text, bucket_ts timestamptz, open numeric, high numeric, low numeric, close numeric, volume bigint,
    turnover numeric, n_ticks int, open_ts timestamptz, close_ts timestamptz
) ON COMMIT DELETE ROWS;

-- name: copy_prices
COPY prices_in (symbol, price, bid, ask, bid_qty, ask_qty, volume, turnover, change_pct, open, high, low,
                prev_close, prev_high, prev_low, source, ts, received_ts)
FROM STDIN (FORMAT BINARY);

-- name: merge_prices
-- Latest price per symbol for one batch (one row per symbol in prices_in).  Within a source the
-- market time only moves forward (a late REST answer never overwrites a newer print); a change
-- of source always wins, because it means the other source has just taken over.
INSERT INTO market.prices_best AS p (symbol, price, bid, ask, bid_qty, ask_qty, volume, turnover, change_pct,
                                     open, high, low, prev_close, prev_high, prev_low, source, ts, received_ts,
                                     updated_ts)
SELECT u.symbol, u.price, u.bid, u.ask, u.bid_qty, u.ask_qty, u.volume, u.turnover, u.change_pct,
       u.open, u.high, u.low, u.prev_close, u.prev_high, u.prev_low, u.source, u.ts, u.received_ts,
       clock_timestamp()
  FROM prices_in u
ON CONFLICT (symbol) DO UPDATE
   SET price = EXCLUDED.price,
       bid = EXCLUDED.bid,
       ask = EXCLUDED.ask,
       bid_qty = EXCLUDED.bid_qty,
       ask_qty = EXCLUDED.ask_qty,
       volume = EXCLUDED.volume,
       turnover = EXCLUDED.turnover,
       change_pct = EXCLUDED.change_pct,
       open = EXCLUDED.open,
       high = EXCLUDED.high,
       low = EXCLUDED.low,
       prev_close = EXCLUDED.prev_close,
       prev_high = coalesce(EXCLUDED.prev_high, p.prev_high),
       prev_low = coalesce(EXCLUDED.prev_low, p.prev_low),
       source = EXCLUDED.source,
       ts = EXCLUDED.ts,
       received_ts = EXCLUDED.received_ts,
       updated_ts = EXCLUDED.updated_ts
 WHERE EXCLUDED.ts >= p.ts OR EXCLUDED.source <> p.source;

-- name: update_books
-- Best bid/ask from H0STASP0 order books; the price itself only ever comes from trades or polls.
UPDATE market.prices_best p
   SET bid = u.bid, ask = u.ask, bid_qty = u.bid_qty, ask_qty = u.ask_qty, updated_ts = clock_timestamp()
  FROM unnest(%(symbol)b::text[], %(bid)b::numeric[], %(ask)b::numeric[], %(bid_qty)b::bigint[],
              %(ask_qty)b::bigint[]) AS u(symbol, bid, ask, bid_qty, ask_qty)
 WHERE p.symbol = u.symbol;

-- name: copy_candles
COPY candles_in (symbol, bucket_ts, open, high, low, close, volume, turnover, n_ticks, open_ts, close_ts)
FROM STDIN (FORMAT BINARY);

-- name: merge_candles
-- Partial bars of one batch merged into the day's bars.  A closed bar is left alone (the WHERE
-- keeps the immutability trigger from ever firing on ingest).
INSERT INTO market.candles AS c (symbol, bucket_ts, open, high, low, close, volume, turnover, n_ticks,
                                 open_ts, close_ts, closed, updated_ts)
SELECT u.symbol, u.bucket_ts, u.open, u.high, u.low, u.close, u.volume, u.turnover, u.n_ticks,
       u.open_ts, u.close_ts, false, clock_timestamp()
  FROM candles_in u
ON CONFLICT (symbol, bucket_ts) DO UPDATE
   SET open = CASE WHEN c.open_ts IS NULL OR EXCLUDED.open_ts < c.open_ts THEN EXCLUDED.open ELSE c.open END,
       open_ts = least(c.open_ts, EXCLUDED.open_ts),
       high = greatest(c.high, EXCLUDED.high),
       low = least(c.low, EXCLUDED.low),
       close = CASE WHEN c.close_ts IS NULL OR EXCLUDED.close_ts >= c.close_ts THEN EXCLUDED.close ELSE c.close END,
       close_ts = greatest(c.close_ts, EXCLUDED.close_ts),
       volume = c.volume + EXCLUDED.volume,
       turnover = c.turnover + EXCLUDED.turnover,
       n_ticks = c.n_ticks + EXCLUDED.n_ticks,
       updated_ts = EXCLUDED.updated_ts
 WHERE NOT c.closed;

-- name: close_candles
UPDATE market.candles
   SET closed = true, updated_ts = clock_timestamp()
 WHERE NOT closed AND bucket_ts <= %(last_bucket)s;

-- name: upsert_freshness
-- Data arrived for (symbol, source): its times and the verdict at arrival.
INSERT INTO market.freshness AS f (symbol, source, last_ts, received_ts, lag_ms, status, reason, checked_ts,
                                   updated_ts)
SELECT u.symbol, u.source, u.last_ts, u.received_ts, u.lag_ms, u.status, u.reason, %(checked_ts)s,
       clock_timestamp()
  FROM unnest(%(symbol)b::text[], %(source)b::text[], %(last_ts)b::timestamptz[],
              %(received_ts)b::timestamptz[], %(lag_ms)b::int[], %(status)b::text[], %(reason)b::text[])
       AS u(symbol, source, last_ts, received_ts, lag_ms, status, reason)
ON CONFLICT (symbol, source) DO UPDATE
   SET last_ts = EXCLUDED.last_ts,
       received_ts = EXCLUDED.received_ts,
       lag_ms = EXCLUDED.lag_ms,
       status = EXCLUDED.status,
       reason = EXCLUDED.reason,
       checked_ts = EXCLUDED.checked_ts,
       updated_ts = EXCLUDED.updated_ts;

-- name: stale_all_at_start
-- A new PriceSync vouches for nothing it has not seen itself.
UPDATE market.freshness
   SET status = 'STALE', reason = 'pricesync restarted', checked_ts = %(checked_ts)s, updated_ts = clock_timestamp()
 WHERE status = 'FRESH';

-- name: upsert_feed_status
INSERT INTO market.feed_status AS fs (feed, connected, notices_subscribed, subscriptions, last_frame_ts,
                                      last_connect_ts, last_disconnect_ts, reason, updated_ts)
VALUES (%(feed)s, %(connected)s, %(notices_subscribed)s, %(subscriptions)s, %(last_frame_ts)s,
        %(last_connect_ts)s, %(last_disconnect_ts)s, %(reason)s, clock_timestamp())
ON CONFLICT (feed) DO UPDATE
   SET connected = EXCLUDED.connected,
       notices_subscribed = EXCLUDED.notices_subscribed,
       subscriptions = EXCLUDED.subscriptions,
       last_frame_ts = EXCLUDED.last_frame_ts,
       last_connect_ts = coalesce(EXCLUDED.last_connect_ts, fs.last_connect_ts),
       last_disconnect_ts = coalesce(EXCLUDED.last_disconnect_ts, fs.last_disconnect_ts),
       reason = EXCLUDED.reason,
       updated_ts = EXCLUDED.updated_ts;

-- name: insert_notice
INSERT INTO market.broker_notices (received_ts, trade_date, tr_id, kind, odno, oodno, side, symbol, qty, price,
                                   exec_time, order_qty, order_price, ord_dvsn, fields)
VALUES (%(received_ts)s, %(trade_date)s, %(tr_id)s, %(kind)s, %(odno)s, %(oodno)s, %(side)s, %(symbol)s, %(qty)s,
        %(price)s, %(exec_time)s, %(order_qty)s, %(order_price)s, %(ord_dvsn)s, %(fields)s)
RETURNING notice_id;

-- name: record_vi
-- A batch's changes of VI state: each one into the history, the last per symbol (flagged ``last``) into
-- vi_state.  ``since`` stays while the symbol stays in (or out of) a VI on the same day, so a
-- quote naming the VI the stream only said was running does not move the VI's start.
WITH u AS (
    SELECT * FROM unnest(%(symbol)b::text[], %(state)b::text[], %(reference)b::bigint[], %(source)b::text[],
                         %(ts)b::timestamptz[], %(last)b::boolean[]) AS u(symbol, state, reference, source, ts, last)
), history AS (
    INSERT INTO market.vi_history (symbol, state, reference, source, ts)
    SELECT symbol, state, reference, source, ts FROM u
)
INSERT INTO market.vi_state AS v (symbol, state, reference, since, source, ts, updated_ts)
SELECT symbol, state, reference, ts, source, ts, clock_timestamp() FROM u WHERE last
ON CONFLICT (symbol) DO UPDATE
   SET since = CASE WHEN (v.state = 'NONE') = (EXCLUDED.state = 'NONE')
                         AND v.ts > EXCLUDED.ts - interval '12 hours' THEN v.since
                    ELSE EXCLUDED.since END,
       state = EXCLUDED.state,
       reference = EXCLUDED.reference,
       source = EXCLUDED.source,
       ts = EXCLUDED.ts,
       updated_ts = EXCLUDED.updated_ts;

-- name: copy_books
-- Recording (SM_PRICESYNC_RECORD): the batch's order-book snapshots, appended as they came.
COPY market.books (ts, symbol, ask_prices, ask_qtys, bid_prices, bid_qtys, hour_cls_code, received_ts)
FROM STDIN (FORMAT BINARY);

-- name: copy_quotes
-- Recording: every inquire-price answer of the batch, with its time.
COPY market.quotes (ts, received_ts, symbol, price, bid, ask, bid_qty, ask_qty, volume, open, high, low)
FROM STDIN (FORMAT BINARY);

-- name: record_symbol_days
-- Recording: the day's master and base prices, one row per symbol (a symbol no master had, learnt
-- from its quote, too); a reload the same day (a restart) writes again only what changed.
INSERT INTO market.symbol_days AS d (trade_date, symbol, name, market, base_price, upper_limit, lower_limit,
                                     prev_high, prev_low, prev_volume, halted, designation, warn_code,
                                     liquidation_trading, source, recorded_ts)
SELECT %(trade_date)s, u.symbol, u.name, u.market, u.base_price, u.upper_limit, u.lower_limit, u.prev_high,
       u.prev_low, u.prev_volume, u.halted, u.designation, u.warn_code, u.liquidation_trading, %(source)s,
       clock_timestamp()
  FROM unnest(%(symbol)b::text[], %(name)b::text[], %(market)b::text[], %(base_price)b::bigint[],
              %(upper_limit)b::bigint[], %(lower_limit)b::bigint[], %(prev_high)b::bigint[],
              %(prev_low)b::bigint[], %(prev_volume)b::bigint[], %(halted)b::boolean[], %(designation)b::text[],
              %(warn_code)b::text[], %(liquidation_trading)b::boolean[])
       AS u(symbol, name, market, base_price, upper_limit, lower_limit, prev_high, prev_low, prev_volume, halted,
            designation, warn_code, liquidation_trading)
ON CONFLICT (trade_date, symbol) DO UPDATE
   SET name = EXCLUDED.name,
       market = EXCLUDED.market,
       base_price = coalesce(EXCLUDED.base_price, d.base_price),
       upper_limit = coalesce(EXCLUDED.upper_limit, d.upper_limit),
       lower_limit = coalesce(EXCLUDED.lower_limit, d.lower_limit),
       prev_high = coalesce(EXCLUDED.prev_high, d.prev_high),
       prev_low = coalesce(EXCLUDED.prev_low, d.prev_low),
       prev_volume = coalesce(EXCLUDED.prev_volume, d.prev_volume),
       halted = EXCLUDED.halted,
       designation = EXCLUDED.designation,
       warn_code = EXCLUDED.warn_code,
       liquidation_trading = EXCLUDED.liquidation_trading,
       source = EXCLUDED.source,
       recorded_ts = EXCLUDED.recorded_ts
 WHERE (d.name, d.market, d.base_price, d.upper_limit, d.lower_limit, d.prev_high, d.prev_low, d.prev_volume,
        d.halted, d.designation, d.warn_code, d.liquidation_trading)
       IS DISTINCT FROM
       (EXCLUDED.name, EXCLUDED.market, coalesce(EXCLUDED.base_price, d.base_price),
        coalesce(EXCLUDED.upper_limit, d.upper_limit), coalesce(EXCLUDED.lower_limit, d.lower_limit),
        coalesce(EXCLUDED.prev_high, d.prev_high), coalesce(EXCLUDED.prev_low, d.prev_low),
        coalesce(EXCLUDED.prev_volume, d.prev_volume), EXCLUDED.halted, EXCLUDED.designation,
        EXCLUDED.warn_code, EXCLUDED.liquidation_trading);

-- name: record_designation
-- Recording: one designation change during the day (with set_status, in its transaction).
INSERT INTO market.designation_history (symbol, ts, designation, warn_code, liquidation_trading)
VALUES (%(symbol)s, %(ts)s, %(designation)s, %(warn_code)s, %(liquidation_trading)s);
