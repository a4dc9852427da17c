-- name: get_token
SELECT token_cipher, expires_ts, issued_ts, last_attempt_ts
  FROM ops.broker_tokens
 WHERE key_id = %(key_id)s;

-- name: lock_token_issue
SELECT pg_advisory_lock(hashtextextended('kis-token:' || %(key_id)s, 0));

-- name: unlock_token_issue
SELECT pg_advisory_unlock(hashtextextended('kis-token:' || %(key_id)s, 0));

-- name: record_token_attempt
INSERT INTO ops.broker_tokens (key_id, last_attempt_ts, updated_ts)
VALUES (%(key_id)s, %(at)s, clock_timestamp())
ON CONFLICT (key_id) DO UPDATE SET last_attempt_ts = EXCLUDED.last_attempt_ts, updated_ts = clock_timestamp();

-- name: save_token
INSERT INTO ops.broker_tokens (key_id, token_cipher, expires_ts, issued_ts, updated_ts)
VALUES (%(key_id)s, %(cipher)s, %(expires_ts)s, %(issued_ts)s, clock_timestamp())
ON CONFLICT (key_id) DO UPDATE
   SET token_cipher = EXCLUDED.token_cipher, expires_ts = EXCLUDED.expires_ts,
       issued_ts = EXCLUDED.issued_ts, updated_ts = clock_timestamp();

-- name: ensure_rate_row
INSERT INTO ops.rate_limits (key_id) VALUES (%(key_id)s) ON CONFLICT (key_id) DO NOTHING;

-- name: take_rate_slot
-- Grants a slot when fewer than %(allowed)s grants fall inside the window, else says how long until
-- the oldest grant that matters leaves it.  One statement: the row lock serialises every process.
WITH cur AS (
    SELECT key_id, grants, clock_timestamp() AS now
      FROM ops.rate_limits
     WHERE key_id = %(key_id)s
       FOR UPDATE
), win AS (
    SELECT cur.key_id, cur.now,
           ARRAY(SELECT g FROM unnest(cur.grants) AS g
                  WHERE g > cur.now - make_interval(secs => %(window_s)s) ORDER BY g) AS live
      FROM cur
), upd AS (
    UPDATE ops.rate_limits r
       SET grants = win.live || win.now, updated_ts = win.now
      FROM win
     WHERE r.key_id = win.key_id AND cardinality(win.live) < %(allowed)s
    RETURNING 1
)
SELECT (SELECT count(*) FROM upd) AS granted,
       cardinality(win.live) AS in_window,
       extract(epoch FROM win.live[cardinality(win.live) - %(allowed)s + 1]
                          + make_interval(secs => %(window_s)s) - win.now)::float8 AS wait_s
  FROM win;
