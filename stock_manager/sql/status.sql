-- name: heartbeats
SELECT service, instance_id, pid, status, beat_ts, market_ts,
       extract(epoch FROM clock_timestamp() - beat_ts)::float8 AS age_s
  FROM ops.heartbeats
 ORDER BY service, instance_id;

-- name: trading_state
SELECT state, reason, changed_by, changed_ts FROM trade.trading_state WHERE id = 1;

-- name: counts
SELECT (SELECT count(*) FROM trade.order_intents WHERE status IN ('NEW', 'PROCESSING')) AS open_intents,
       (SELECT min(created_ts) FROM trade.order_intents WHERE status IN ('NEW', 'PROCESSING')) AS oldest_intent_ts,
       (SELECT count(*) FROM trade.orders
         WHERE status IN ('PENDING_SUBMIT', 'IN_DOUBT', 'SUBMITTED', 'PARTIAL')) AS open_orders,
       (SELECT count(*) FROM trade.position_state WHERE qty > 0) AS positions,
       (SELECT count(*) FROM market.freshness WHERE status = 'STALE') AS stale_prices,
       (SELECT count(*) FROM market.freshness WHERE status = 'FRESH') AS fresh_prices;

-- name: set_trading_state
UPDATE trade.trading_state
   SET state = %(state)s, reason = %(reason)s, changed_by = %(changed_by)s, changed_ts = clock_timestamp()
 WHERE id = 1
RETURNING state;

-- name: insert_cli_event
INSERT INTO ops.events (service, level, kind, message, data)
VALUES ('cli', %(level)s, %(kind)s, %(message)s, %(data)s);
