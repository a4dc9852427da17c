-- The alert loop (stock_manager/dashboard/alerts.py), as sm_dashboard.  monitor.alert_log's UNIQUE
-- alert_key is what makes each alert go out once; one pass runs under a transaction-level advisory
-- lock, so two dashboards never send the same alert.

-- name: try_lock
SELECT pg_try_advisory_xact_lock(%(lock_class)s, %(lock_key)s) AS locked;

-- name: cursor
SELECT last_event_id FROM monitor.alert_cursor WHERE name = 'events';

-- name: save_cursor
INSERT INTO monitor.alert_cursor (name, last_event_id) VALUES ('events', %(last_event_id)s)
ON CONFLICT (name) DO UPDATE SET last_event_id = greatest(monitor.alert_cursor.last_event_id, EXCLUDED.last_event_id),
                                 updated_ts = clock_timestamp();

-- name: new_events
-- Past the cursor, and again the last two minutes: an event whose transaction commits late may have
-- a lower id than one already read (re-reading is harmless, alert_key is unique).
SELECT event_id, ts, service, level, kind, message, symbol, throttle_key, severity,
       ts < clock_timestamp() - make_interval(secs => %(max_age_s)s) AS too_old
  FROM monitor.alert_events
 WHERE event_id > %(after)s OR ts > clock_timestamp() - interval '2 minutes'
 ORDER BY event_id
 LIMIT 1000;

-- name: max_event_id
SELECT coalesce(max(event_id), 0) AS event_id FROM ops.events;

-- name: conditions
SELECT condition_key, kind, severity, throttle_key, symbol, message FROM monitor.alert_conditions;

-- name: record
INSERT INTO monitor.alert_log (alert_key, source, kind, severity, throttle_key, symbol, message, event_id)
VALUES (%(alert_key)s, %(source)s, %(kind)s, %(severity)s, %(throttle_key)s, %(symbol)s, %(message)s, %(event_id)s)
ON CONFLICT (alert_key) DO NOTHING;

-- name: open_conditions
-- Conditions alerted and not yet seen to end; a PENDING one is resolved only after it went out.
SELECT alert_id, alert_key, kind, throttle_key, symbol, message, status
  FROM monitor.alert_log
 WHERE source = 'condition' AND resolved_ts IS NULL AND status <> 'PENDING';

-- name: mark_resolved
UPDATE monitor.alert_log SET resolved_ts = clock_timestamp(), updated_ts = clock_timestamp()
 WHERE alert_id = %(alert_id)s;

-- name: pending
SELECT alert_id, alert_key, source, kind, severity, throttle_key, symbol, message, attempts
  FROM monitor.alert_log
 WHERE status = 'PENDING'
 ORDER BY alert_id
 LIMIT 500
   FOR UPDATE;

-- name: recently_sent
SELECT DISTINCT throttle_key
  FROM monitor.alert_log
 WHERE status = 'SENT' AND sent_ts > clock_timestamp() - make_interval(secs => %(repeat_s)s);

-- name: mark_sent
UPDATE monitor.alert_log
   SET status = 'SENT', sent_ts = clock_timestamp(), attempts = attempts + 1, last_error = NULL,
       updated_ts = clock_timestamp()
 WHERE alert_id = ANY(%(ids)s);

-- name: mark_suppressed
UPDATE monitor.alert_log SET status = 'SUPPRESSED', updated_ts = clock_timestamp()
 WHERE alert_id = ANY(%(ids)s);

-- name: mark_failed_attempt
UPDATE monitor.alert_log
   SET attempts = attempts + 1, last_error = %(error)s,
       status = CASE WHEN attempts + 1 >= %(max_attempts)s THEN 'FAILED' ELSE status END,
       updated_ts = clock_timestamp()
 WHERE alert_id = ANY(%(ids)s);
