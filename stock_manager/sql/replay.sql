-- stock-manager replay (stock_manager/replay.py): what a replayed day is measured by, read after the day.

-- name: tick_lag
-- How far PriceSync ran behind the replay's clock: a print's arrival (PriceSync stamps it from the
-- market clock) less its market time, in market seconds.
SELECT count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_ts - ts)) AS p50_s,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_ts - ts)) AS p99_s,
       max(extract(epoch FROM received_ts - ts)) AS max_s
  FROM market.ticks
 WHERE source = 'WS';

-- name: freshness_lag
-- The same for every symbol's latest data, WebSocket and REST (market.freshness.lag_ms).
SELECT source, count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms) / 1000.0 AS p50_s,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms) / 1000.0 AS p99_s
  FROM market.freshness
 WHERE lag_ms IS NOT NULL
 GROUP BY source
 ORDER BY source;

-- name: intent_to_order
-- Strategy's intent to Execution's order at the broker, in wall milliseconds (both stamped by the database).
SELECT count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.submitted_ts - i.created_ts) * 1000) AS p50_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM o.submitted_ts - i.created_ts) * 1000) AS p99_ms
  FROM trade.orders o
  JOIN trade.order_intents i ON i.intent_id = o.intent_id
 WHERE o.submitted_ts IS NOT NULL;
