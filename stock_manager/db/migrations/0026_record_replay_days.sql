-- What a replay of a real day needs that market.* did not keep (issue #14, "Recording"): PriceSync
-- writes these in paper and live mode (SM_PRICESYNC_RECORD), `stock-manager export-day` reads them
-- with market.ticks and market.vi_history into a day file, `import-day` writes a day file back.
-- Vocabularies as in 0022 (stock_manager.shared.market_status): designation 51..59 less 55,
-- warn_code 00..03.
--
-- Retention: books and quotes are append-only and not partitioned (at most one book per streamed
-- symbol per market second, about a million rows for a day of 40 streams); a day is dropped with
-- DELETE ... WHERE ts >= <day> AND ts < <day + 1> once it is exported (the ts indexes make that a
-- range scan), as import-day --replace does.

-- Order-book snapshots (H0STASP0): ten levels a side, best first, as KIS sent them (an empty level
-- is 0 / 0).  ts is the market time (the book's BSOP_HOUR on the trade date), received_ts when
-- PriceSync had it.
CREATE TABLE market.books (
    ts             timestamptz NOT NULL,
    symbol         text NOT NULL CHECK (symbol ~ '^[0-9A-Z][0-9A-Z]{5,6}$'),
    ask_prices     bigint[] NOT NULL,
    ask_qtys       bigint[] NOT NULL,
    bid_prices     bigint[] NOT NULL,
    bid_qtys       bigint[] NOT NULL,
    hour_cls_code  text NOT NULL DEFAULT '',
    received_ts    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (cardinality(ask_prices) = cardinality(ask_qtys) AND cardinality(bid_prices) = cardinality(bid_qtys))
);
CREATE INDEX books_symbol_ts_idx ON market.books (symbol, ts);
CREATE INDEX books_ts_idx ON market.books USING brin (ts);

-- REST-polled quotes (inquire-price).  The answer carries no market time, so ts is the time it
-- arrived on the service clock, the time PriceSync publishes it under; bid/ask stay NULL from
-- inquire-price (it has no book).
CREATE TABLE market.quotes (
    ts           timestamptz NOT NULL,
    received_ts  timestamptz NOT NULL,
    symbol       text NOT NULL CHECK (symbol ~ '^[0-9A-Z][0-9A-Z]{5,6}$'),
    price        bigint NOT NULL CHECK (price > 0),
    bid          bigint CHECK (bid > 0),
    ask          bigint CHECK (ask > 0),
    bid_qty      bigint CHECK (bid_qty >= 0),
    ask_qty      bigint CHECK (ask_qty >= 0),
    volume       bigint CHECK (volume >= 0),
    open         bigint,
    high         bigint,
    low          bigint
);
CREATE INDEX quotes_symbol_ts_idx ON market.quotes (symbol, ts);
CREATE INDEX quotes_ts_idx ON market.quotes USING brin (ts);

-- The day's symbol master and base prices as the day began, one row per (trade_date, symbol);
-- written again when the master is reloaded that day.  source: the mode that recorded it
-- (stock_manager.dayfile_cmd.SOURCES; an imported day keeps its file's).
CREATE TABLE market.symbol_days (
    trade_date           date NOT NULL,
    symbol               text NOT NULL CHECK (symbol ~ '^[0-9A-Z][0-9A-Z]{5,6}$'),
    name                 text NOT NULL,
    market               text NOT NULL CHECK (market IN ('KOSPI', 'KOSDAQ', 'KONEX', 'ETF')),
    base_price           bigint CHECK (base_price > 0),
    upper_limit          bigint CHECK (upper_limit > 0),
    lower_limit          bigint CHECK (lower_limit > 0),
    prev_high            bigint,
    prev_low             bigint,
    prev_volume          bigint CHECK (prev_volume >= 0),
    halted               boolean NOT NULL DEFAULT false,
    designation          text CHECK (designation ~ '^[0-9]{2}$' AND designation NOT IN ('00', '55')),
    warn_code            text CHECK (warn_code IN ('00', '01', '02', '03')),
    liquidation_trading  boolean NOT NULL DEFAULT false,
    kospi200             boolean,
    source               text NOT NULL CHECK (source IN ('sim', 'paper', 'live', 'synthetic')),
    recorded_ts          timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (trade_date, symbol)
);

-- Every designation change PriceSync saw during a day (inquire-price is the newer word than the
-- morning's master), append-only.  ts is the market time of the quote that said so.
CREATE TABLE market.designation_history (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol               text NOT NULL CHECK (symbol ~ '^[0-9A-Z][0-9A-Z]{5,6}$'),
    ts                   timestamptz NOT NULL,
    designation          text CHECK (designation ~ '^[0-9]{2}$' AND designation NOT IN ('00', '55')),
    warn_code            text CHECK (warn_code IN ('00', '01', '02', '03')),
    liquidation_trading  boolean NOT NULL DEFAULT false,
    received_ts          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX designation_history_symbol_ts_idx ON market.designation_history (symbol, ts);
CREATE INDEX designation_history_ts_idx ON market.designation_history (ts);

-- PriceSync owns market.*; SELECT for everyone else comes by default privileges (0006, 0013).
GRANT INSERT, UPDATE, DELETE ON market.books, market.quotes, market.symbol_days, market.designation_history
    TO sm_pricesync;
