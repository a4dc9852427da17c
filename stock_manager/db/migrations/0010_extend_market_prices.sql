-- PriceSync: what the ingest pipeline and the readers of market.* need beyond 0003/0008.

-- Candles are merged batch by batch (and across restarts) from partial bars, so each bar keeps
-- the market times of its first and last tick: open/close then follow tick time, not the order
-- in which batches happened to arrive.
ALTER TABLE market.candles
    ADD COLUMN open_ts  timestamptz,
    ADD COLUMN close_ts timestamptz;

-- Closing bars is one UPDATE over the still-open ones; this keeps it from scanning the day.
CREATE INDEX candles_open_bucket_idx ON market.candles (bucket_ts) WHERE NOT closed;

-- prices_best, freshness and the current minute's candles are updated many times a second; room
-- left on each page keeps those updates HOT (no index churn) and the small hot tables vacuumed.
ALTER TABLE market.prices_best SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.0,
                                    autovacuum_vacuum_threshold = 5000);
ALTER TABLE market.freshness SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.0,
                                  autovacuum_vacuum_threshold = 5000);
ALTER TABLE market.candles SET (fillfactor = 80);

-- freshness.checked_ts: the market time of the evaluation that last wrote the row (a verdict is
-- rewritten when it changes or when new data arrives; whether PriceSync is alive to stand by it
-- is what market.prices_live adds).
ALTER TABLE market.freshness
    ADD COLUMN checked_ts timestamptz;

-- The one safe way to read a price: prices_best with the verdict of its own source, and FRESH
-- only while a PriceSync instance is heartbeating.  A PriceSync that died leaves FRESH rows
-- behind; without the heartbeat condition those would look fresh forever.
CREATE VIEW market.prices_live AS
SELECT p.symbol,
       p.price,
       p.bid,
       p.ask,
       p.bid_qty,
       p.ask_qty,
       p.volume,
       p.turnover,
       p.change_pct,
       p.open,
       p.high,
       p.low,
       p.prev_close,
       p.prev_high,
       p.prev_low,
       p.source,
       p.ts,
       p.received_ts,
       f.status AS freshness,
       f.reason AS stale_reason,
       f.lag_ms,
       coalesce(f.status = 'FRESH' AND alive.ok, false) AS fresh
  FROM market.prices_best p
  LEFT JOIN market.freshness f ON f.symbol = p.symbol AND f.source = p.source
 CROSS JOIN LATERAL (
        SELECT EXISTS (
                   SELECT 1
                     FROM ops.heartbeats h
                    WHERE h.service = 'pricesync'
                      AND h.status IN ('RUNNING', 'DEGRADED')
                      AND h.beat_ts > clock_timestamp() - interval '20 seconds'
               ) AS ok
       ) alive;

-- Writes: PriceSync owns market.* (0006 granted the tables that existed then).
GRANT SELECT ON market.prices_live TO sm_pricesync, sm_strategy, sm_execution, sm_readonly;
