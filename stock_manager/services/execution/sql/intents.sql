-- name: claim_without_flush
-- The claim's transaction commits without waiting for the WAL flush: a claim a server crash loses
-- only returns its intents to NEW (nothing was written ahead for them yet, and an order row is
-- UNIQUE per intent whoever writes it).  The write-ahead, which a send follows, is always flushed.
SET LOCAL synchronous_commit = off;

-- name: claim_intents
-- One statement claims a batch (rows another Execution is claiming are skipped, never waited on)
-- and returns, with each intent, what validating it needs: the symbol, its price, the trading state.
WITH picked AS (
    SELECT i.intent_id
      FROM trade.order_intents i
     WHERE i.status = 'NEW'
     ORDER BY i.created_ts
     LIMIT %(batch)s
       FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE trade.order_intents i
       SET status = 'PROCESSING', claimed_by = %(me)s, claimed_ts = clock_timestamp(),
           attempts = i.attempts + 1, updated_ts = clock_timestamp()
      FROM picked
     WHERE i.intent_id = picked.intent_id
    RETURNING i.intent_id, i.action_key, i.symbol, i.side, i.intent_type, i.qty, i.order_type, i.limit_price,
              i.created_ts, i.attempts
)
SELECT c.*, s.symbol AS known_symbol, s.market, s.halted, s.upper_limit, s.lower_limit, p.price AS last_price,
       coalesce((SELECT t.state FROM trade.trading_state t WHERE t.id = 1), 'HALTED') AS trading_state
  FROM claimed c
  LEFT JOIN market.symbols s ON s.symbol = c.symbol
  LEFT JOIN market.prices_best p ON p.symbol = c.symbol
 ORDER BY c.created_ts;

-- name: finish_intent
UPDATE trade.order_intents
   SET status = %(status)s, status_reason = %(reason)s, updated_ts = clock_timestamp()
 WHERE intent_id = %(intent_id)s;

-- name: reclaim_stale_intents
-- The reconciler's (fenced).  An intent left PROCESSING by a process that died before writing its order goes back to NEW.
-- Taking one over from a live but slow owner is still safe: only one order row per intent can
-- ever be written, and only the process that wrote it sends.
UPDATE trade.order_intents i
   SET status = 'NEW', claimed_by = NULL, claimed_ts = NULL, updated_ts = clock_timestamp()
 WHERE i.status = 'PROCESSING'
   AND i.claimed_ts < clock_timestamp() - make_interval(secs => %(stale_s)s)
   AND NOT EXISTS (SELECT 1 FROM trade.orders o WHERE o.intent_id = i.intent_id)
   AND NOT EXISTS (
       SELECT 1 FROM ops.heartbeats h
        WHERE h.service = 'execution' AND h.instance_id || '#' || h.pid = i.claimed_by
          AND h.status IN ('STARTING', 'RUNNING', 'DEGRADED')
          AND h.beat_ts > clock_timestamp() - make_interval(secs => %(dead_s)s))
   AND trade.lease_check(%(lease)s, %(holder)s, %(epoch)s)
RETURNING i.intent_id;

-- name: intents_without_outcome
-- PROCESSING intents whose order reached an outcome the intent has not recorded yet (a crash
-- between the two updates).
SELECT i.intent_id, o.status AS order_status, o.status_reason
  FROM trade.order_intents i
  JOIN trade.orders o ON o.intent_id = i.intent_id
 WHERE i.status = 'PROCESSING' AND NOT o.status = ANY(%(awaiting_orders)s);

-- name: finish_processing_intent
-- A refusal on the broker's figures (the Submitter), or the reconciler's repair (fenced).
UPDATE trade.order_intents
   SET status = %(status)s, status_reason = %(reason)s, updated_ts = clock_timestamp()
 WHERE intent_id = %(intent_id)s AND status = 'PROCESSING' AND trade.lease_check(%(lease)s, %(holder)s, %(epoch)s);
