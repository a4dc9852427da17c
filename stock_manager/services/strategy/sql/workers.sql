-- Workers: registration, transitions (each one also a history row), heartbeats, the stale reaper.

-- name: register_worker
WITH w AS (
    INSERT INTO trade.workers (worker_id, instance_id, pid, host, status)
    VALUES (%(worker_id)s, %(instance_id)s, %(pid)s, %(host)s, 'IDLE')
    RETURNING worker_id, status, started_ts
)
INSERT INTO trade.worker_history (worker_id, from_status, to_status, reason, market_ts)
SELECT worker_id, 'NONE', status, 'registered', %(market_ts)s FROM w
RETURNING history_id;

-- name: transition_worker
-- Moves only from the status the worker believes it is in: a worker the reaper already declared
-- dead (EXIT) finds no row and learns it is gone.
WITH w AS (
    UPDATE trade.workers
       SET status = %(to_status)s, current_symbol = %(symbol)s, updated_ts = clock_timestamp()
     WHERE worker_id = %(worker_id)s AND status = %(from_status)s
    RETURNING worker_id, status, current_symbol
)
INSERT INTO trade.worker_history (worker_id, from_status, to_status, symbol, reason, market_ts)
SELECT worker_id, %(from_status)s, status, coalesce(current_symbol, %(history_symbol)s), %(reason)s, %(market_ts)s
  FROM w
RETURNING history_id;

-- name: set_current_symbol
UPDATE trade.workers
   SET current_symbol = %(symbol)s, updated_ts = clock_timestamp()
 WHERE worker_id = %(worker_id)s AND status <> 'EXIT'
RETURNING worker_id;

-- name: heartbeat_workers
UPDATE trade.workers
   SET heartbeat_ts = clock_timestamp()
 WHERE worker_id = ANY(%(ids)s) AND status <> 'EXIT'
RETURNING worker_id;

-- name: reap_stale_workers
-- Any live Strategy process may run this: SKIP LOCKED lets two of them share the work without
-- waiting, each stale worker is handled once, its locks are deleted in the same statement.
WITH stale AS (
    SELECT worker_id, status, current_symbol
      FROM trade.workers
     WHERE status <> 'EXIT'
       AND heartbeat_ts < clock_timestamp() - make_interval(secs => %(ttl_s)s)
     ORDER BY heartbeat_ts
       FOR UPDATE SKIP LOCKED
), exited AS (
    UPDATE trade.workers w
       SET status = 'EXIT', current_symbol = NULL, updated_ts = clock_timestamp()
      FROM stale
     WHERE w.worker_id = stale.worker_id
    RETURNING w.worker_id
), released AS (
    DELETE FROM trade.symbol_locks l
     USING stale
     WHERE l.worker_id = stale.worker_id
    RETURNING l.symbol, l.worker_id, l.locked_ts
), hist AS (
    INSERT INTO trade.worker_history (worker_id, from_status, to_status, symbol, reason, market_ts)
    SELECT worker_id, status, 'EXIT', current_symbol, 'heartbeat stale: reaped by ' || %(reaper)s, %(market_ts)s
      FROM stale
)
SELECT s.worker_id, s.status AS from_status, s.current_symbol,
       coalesce((SELECT jsonb_agg(jsonb_build_object('symbol', r.symbol, 'locked_ts', r.locked_ts))
                   FROM released r WHERE r.worker_id = s.worker_id), '[]'::jsonb) AS released
  FROM stale s;

-- name: worker_row
SELECT worker_id, instance_id, pid, status, current_symbol, heartbeat_ts FROM trade.workers
 WHERE worker_id = %(worker_id)s;
