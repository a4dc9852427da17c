-- name: upsert_heartbeat
INSERT INTO ops.heartbeats (service, instance_id, pid, host, status, started_ts, beat_ts, market_ts, info)
VALUES (%(service)s, %(instance_id)s, %(pid)s, %(host)s, %(status)s, %(started_ts)s, clock_timestamp(),
        %(market_ts)s, %(info)s)
ON CONFLICT (service, instance_id) DO UPDATE
   SET pid = EXCLUDED.pid,
       host = EXCLUDED.host,
       status = EXCLUDED.status,
       started_ts = EXCLUDED.started_ts,
       beat_ts = EXCLUDED.beat_ts,
       market_ts = EXCLUDED.market_ts,
       info = EXCLUDED.info;

-- name: insert_event
INSERT INTO ops.events (service, level, kind, message, symbol, intent_id, worker_id, market_ts, data)
VALUES (%(service)s, %(level)s, %(kind)s, %(message)s, %(symbol)s, %(intent_id)s, %(worker_id)s,
        %(market_ts)s, %(data)s)
RETURNING event_id;
