-- market: prices as PriceSync sees them.  Only PriceSync writes here; everyone reads.

CREATE TABLE market.symbols (
    symbol        text PRIMARY KEY CHECK (symbol ~ '^[0-9A-Z][0-9A-Z]{5,6}$'),
    name          text NOT NULL,
    market        text NOT NULL CHECK (market IN ('KOSPI', 'KOSDAQ', 'KONEX', 'ETF')),
    base_price    bigint CHECK (base_price > 0),
    upper_limit   bigint CHECK (upper_limit > 0),
    lower_limit   bigint CHECK (lower_limit > 0),
    prev_high     bigint,
    prev_low      bigint,
    halted        boolean NOT NULL DEFAULT false,
    listed        boolean NOT NULL DEFAULT true,
    trade_date    date,
    updated_ts    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (lower_limit IS NULL OR upper_limit IS NULL OR lower_limit <= upper_limit)
);

-- Latest price per symbol.  ts is the market time of the price; received_ts when PriceSync got it.
CREATE TABLE market.prices_best (
    symbol        text PRIMARY KEY CHECK (symbol ~ '^[0-9A-Z][0-9A-Z]{5,6}$'),
    price         numeric(14, 2) NOT NULL CHECK (price > 0),
    bid           numeric(14, 2) CHECK (bid > 0),
    ask           numeric(14, 2) CHECK (ask > 0),
    bid_qty       bigint CHECK (bid_qty >= 0),
    ask_qty       bigint CHECK (ask_qty >= 0),
    volume        bigint CHECK (volume >= 0),
    turnover      numeric(20, 0) CHECK (turnover >= 0),
    change_pct    numeric(8, 2),
    open          numeric(14, 2),
    high          numeric(14, 2),
    low           numeric(14, 2),
    prev_close    numeric(14, 2),
    prev_high     numeric(14, 2),
    prev_low      numeric(14, 2),
    source        text NOT NULL CHECK (source IN ('WS', 'REST')),
    ts            timestamptz NOT NULL,
    received_ts   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_ts    timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Every trade print, append-only, one partition per KST trade date.  The default partition keeps
-- a print whose day has no partition yet, so ingest never fails on a date boundary.
CREATE TABLE market.ticks (
    symbol        text NOT NULL,
    ts            timestamptz NOT NULL,
    price         numeric(14, 2) NOT NULL CHECK (price > 0),
    qty           bigint NOT NULL CHECK (qty >= 0),
    cum_volume    bigint,
    cum_turnover  numeric(20, 0),
    side          smallint CHECK (side IN (1, 3, 5)),
    source        text NOT NULL DEFAULT 'WS' CHECK (source IN ('WS', 'REST')),
    received_ts   timestamptz NOT NULL DEFAULT clock_timestamp()
) PARTITION BY RANGE (ts);
CREATE TABLE market.ticks_default PARTITION OF market.ticks DEFAULT;
CREATE INDEX ticks_symbol_ts_idx ON market.ticks (symbol, ts);

-- Creates the partition for one KST day.  SECURITY DEFINER so PriceSync can add partitions
-- without the right to create arbitrary objects.
CREATE FUNCTION market.ensure_tick_partition(day date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, market AS $$
DECLARE
    part text := format('ticks_%s', to_char(day, 'YYYYMMDD'));
    lo timestamptz := (day::timestamp AT TIME ZONE 'Asia/Seoul');
    hi timestamptz := ((day + 1)::timestamp AT TIME ZONE 'Asia/Seoul');
BEGIN
    IF to_regclass(format('market.%I', part)) IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('market.ticks partition'));
        IF to_regclass(format('market.%I', part)) IS NULL THEN
            IF EXISTS (SELECT 1 FROM market.ticks_default WHERE ts >= lo AND ts < hi) THEN
                -- rows already in the default partition for this day: leave them there
                RETURN 'ticks_default';
            END IF;
            EXECUTE format('CREATE TABLE market.%I PARTITION OF market.ticks FOR VALUES FROM (%L) TO (%L)',
                           part, lo, hi);
        END IF;
    END IF;
    RETURN part;
END
$$;
REVOKE ALL ON FUNCTION market.ensure_tick_partition(date) FROM PUBLIC;

-- 1-minute OHLCV built from ticks.  A closed bar never changes.
CREATE TABLE market.candles (
    symbol        text NOT NULL,
    bucket_ts     timestamptz NOT NULL CHECK (date_trunc('minute', bucket_ts) = bucket_ts),
    open          numeric(14, 2) NOT NULL CHECK (open > 0),
    high          numeric(14, 2) NOT NULL,
    low           numeric(14, 2) NOT NULL,
    close         numeric(14, 2) NOT NULL,
    volume        bigint NOT NULL DEFAULT 0 CHECK (volume >= 0),
    turnover      numeric(20, 0) NOT NULL DEFAULT 0,
    n_ticks       integer NOT NULL DEFAULT 0 CHECK (n_ticks >= 0),
    closed        boolean NOT NULL DEFAULT false,
    updated_ts    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (symbol, bucket_ts),
    CHECK (low <= open AND low <= close AND high >= open AND high >= close)
);

CREATE FUNCTION market.keep_closed_candles() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.closed THEN
        RAISE EXCEPTION 'candle %/% is closed and immutable', OLD.symbol, OLD.bucket_ts
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER candles_closed_immutable BEFORE UPDATE OR DELETE ON market.candles
    FOR EACH ROW EXECUTE FUNCTION market.keep_closed_candles();

-- Per symbol and source: when the last data came, how late it was, and whether it is usable.
CREATE TABLE market.freshness (
    symbol        text NOT NULL,
    source        text NOT NULL CHECK (source IN ('WS', 'REST')),
    last_ts       timestamptz,
    received_ts   timestamptz,
    lag_ms        integer,
    status        text NOT NULL CHECK (status IN ('FRESH', 'STALE')),
    reason        text,
    updated_ts    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (symbol, source)
);
CREATE INDEX freshness_stale_idx ON market.freshness (symbol) WHERE status = 'STALE';
