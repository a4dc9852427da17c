-- name: get_token
SELECT token_cipher, expires_ts, issued_ts, last_attempt_ts
  FROM ops.broker_tokens
 WHERE key_id = %(key_id)s;

-- name: lock_token_issue
-- The keys come from stock_manager/shared/locks.py (token_issue_params).
SELECT pg_advisory_lock(%(lock_class)s, hashtext(%(key_id)s));

-- name: unlock_token_issue
SELECT pg_advisory_unlock(%(lock_class)s, hashtext(%(key_id)s));

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
-- Granted when the schedule has been free for at least %(gap_s)s (0 for orders; lower priorities
-- leave a gap so higher ones find room).  The row lock makes every process take turns, and the
-- times are read after the lock.  A grant up to %(tolerance_s)s late keeps its place in the
-- schedule (the next slot stays one interval after the missed one), so a waiter's wake-up delay
-- does not waste budget; any 21 consecutive grants still span 20 intervals less the tolerance.
-- slot_epoch is the grant's place in the schedule (slots are an interval apart; the grant itself
-- came at most the tolerance after its slot).
UPDATE ops.rate_limits
   SET tat = greatest(tat, clock_timestamp() - make_interval(secs => %(tolerance_s)s))
             + make_interval(secs => %(interval_s)s),
       grants = grants + 1, updated_ts = clock_timestamp()
 WHERE key_id = %(key_id)s AND tat <= clock_timestamp() - make_interval(secs => %(gap_s)s)
RETURNING grants, extract(epoch FROM tat)::float8 - %(interval_s)s AS slot_epoch;

-- name: rate_wait
SELECT greatest(extract(epoch FROM tat - clock_timestamp())::float8 + %(gap_s)s, 0.0) AS wait_s
  FROM ops.rate_limits
 WHERE key_id = %(key_id)s;
