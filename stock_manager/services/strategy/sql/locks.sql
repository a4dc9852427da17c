-- Per-symbol locks.  The primary key makes two holders impossible; a lock whose TTL has passed may
-- be taken over in the same single statement (the ON CONFLICT ... WHERE), so acquire is atomic.

-- name: acquire_lock
INSERT INTO trade.symbol_locks AS l (symbol, worker_id, locked_ts, heartbeat_ts, ttl_s, expires_ts)
VALUES (%(symbol)s, %(worker_id)s, clock_timestamp(), clock_timestamp(), %(ttl_s)s,
        clock_timestamp() + make_interval(secs => %(ttl_s)s))
ON CONFLICT (symbol) DO UPDATE
   SET worker_id = EXCLUDED.worker_id,
       locked_ts = CASE WHEN l.worker_id = EXCLUDED.worker_id THEN l.locked_ts ELSE EXCLUDED.locked_ts END,
       heartbeat_ts = EXCLUDED.heartbeat_ts,
       ttl_s = EXCLUDED.ttl_s,
       expires_ts = EXCLUDED.expires_ts
 WHERE l.expires_ts < clock_timestamp() OR l.worker_id = EXCLUDED.worker_id
RETURNING symbol, worker_id, locked_ts, expires_ts;

-- name: lock_holder
SELECT symbol, worker_id, locked_ts, expires_ts, expires_ts < clock_timestamp() AS expired
  FROM trade.symbol_locks WHERE symbol = %(symbol)s;

-- name: release_lock
DELETE FROM trade.symbol_locks
 WHERE symbol = %(symbol)s AND worker_id = %(worker_id)s
RETURNING symbol, worker_id, locked_ts;

-- name: release_worker_locks
DELETE FROM trade.symbol_locks
 WHERE worker_id = %(worker_id)s
RETURNING symbol, worker_id, locked_ts;

-- name: release_all_locks
DELETE FROM trade.symbol_locks
RETURNING symbol, worker_id, locked_ts;

-- name: renew_locks
UPDATE trade.symbol_locks
   SET heartbeat_ts = clock_timestamp(), expires_ts = clock_timestamp() + make_interval(secs => ttl_s)
 WHERE worker_id = ANY(%(ids)s)
RETURNING symbol, worker_id;
