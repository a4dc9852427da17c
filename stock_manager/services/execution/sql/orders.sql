-- name: rewrite_ahead
-- A confirmed-absent order is sent again: the same row, one more attempt, a new timestamp.
UPDATE trade.orders
   SET status = 'PENDING_SUBMIT', submit_attempts = submit_attempts + 1, attempt_ts = clock_timestamp(),
       attempt_market_ts = %(market_ts)s, claimed_by = %(me)s, updated_ts = clock_timestamp()
 WHERE order_id = %(order_id)s AND status = 'IN_DOUBT'
RETURNING order_id;

-- name: order_for_update
SELECT * FROM trade.orders WHERE order_id = %(order_id)s FOR UPDATE;

-- name: order_by_broker_no
-- The order a broker number belongs to: its own number, or a modify that replaced it.
SELECT o.*
  FROM trade.orders o
 WHERE o.trade_date = %(trade_date)s AND o.broker_order_no = %(odno)s
UNION ALL
SELECT o.*
  FROM trade.order_amendments a
  JOIN trade.orders o ON o.order_id = a.order_id
 WHERE a.trade_date = %(trade_date)s AND a.broker_order_no = %(odno)s AND a.kind = 'MODIFY'
LIMIT 1;

-- name: link_ack
UPDATE trade.orders
   SET broker_order_no = %(odno)s, broker_org_no = %(org_no)s, status = %(status)s,
       submitted_ts = coalesce(submitted_ts, clock_timestamp()),
       raw = CASE WHEN %(raw)s::jsonb IS NULL THEN raw ELSE raw || %(raw)s::jsonb END,
       updated_ts = clock_timestamp()
 WHERE order_id = %(order_id)s;

-- name: set_order_status
UPDATE trade.orders
   SET status = %(status)s, status_reason = coalesce(%(reason)s, status_reason),
       raw = CASE WHEN %(raw)s::jsonb IS NULL THEN raw ELSE raw || %(raw)s::jsonb END,
       updated_ts = clock_timestamp()
 WHERE order_id = %(order_id)s;

-- name: set_order_fill_totals
UPDATE trade.orders
   SET filled_qty = %(filled_qty)s, filled_amount = %(filled_amount)s, cancelled_qty = %(cancelled_qty)s,
       status = %(status)s, updated_ts = clock_timestamp()
 WHERE order_id = %(order_id)s;

-- name: set_broker_view
UPDATE trade.orders
   SET broker_filled_qty = greatest(broker_filled_qty, %(qty)s),
       broker_filled_amount = CASE WHEN %(qty)s >= broker_filled_qty THEN %(amount)s ELSE broker_filled_amount END,
       broker_seen_ts = %(seen_ts)s, fills_missing_since = %(missing_since)s, updated_ts = clock_timestamp()
 WHERE order_id = %(order_id)s;

-- name: fill_totals
SELECT coalesce(sum(qty), 0)::bigint AS qty, coalesce(sum(qty * price), 0) AS amount,
       count(*) FILTER (WHERE source = 'RECONCILE') AS reconciled
  FROM trade.fills
 WHERE order_id = %(order_id)s;

-- name: insert_fill
INSERT INTO trade.fills (order_id, exec_key, symbol, side, qty, price, fee, tax, ts, source)
VALUES (%(order_id)s, %(exec_key)s, %(symbol)s, %(side)s, %(qty)s, %(price)s, %(fee)s, %(tax)s, %(ts)s, %(source)s)
ON CONFLICT (order_id, exec_key) DO NOTHING
RETURNING fill_id;

-- name: stale_pending
-- Orders whose outcome nobody can still be waiting for: in doubt for a while, or written ahead by
-- a process that is gone (no fresh heartbeat from that very incarnation), or written ahead so long
-- ago that no send can still be under way.
SELECT o.*
  FROM trade.orders o
 WHERE (o.status = 'IN_DOUBT' AND o.updated_ts < clock_timestamp() - make_interval(secs => %(grace_s)s))
    OR (o.status = 'PENDING_SUBMIT'
        AND o.attempt_ts < clock_timestamp() - make_interval(secs => %(after_s)s)
        AND NOT EXISTS (
            SELECT 1 FROM ops.heartbeats h
             WHERE h.service = 'execution' AND h.instance_id || '#' || h.pid = o.claimed_by
               AND h.status IN ('STARTING', 'RUNNING', 'DEGRADED')
               AND h.beat_ts > clock_timestamp() - make_interval(secs => %(dead_s)s)))
    OR (o.status = 'PENDING_SUBMIT' AND o.attempt_ts < clock_timestamp() - interval '5 minutes')
 ORDER BY o.order_id;

-- name: young_pending
SELECT order_id, symbol, side, qty, ord_dvsn, limit_price
  FROM trade.orders
 WHERE status = 'PENDING_SUBMIT' AND attempt_ts >= clock_timestamp() - make_interval(secs => %(after_s)s);

-- name: orders_of_day
-- Linked orders of a day, as they stood when the broker's list was asked for: an order changed
-- since (acked, or a fill noticed, after the list was made) is newer than the list, and waits for
-- the next pass rather than be compared with an older picture of itself.
SELECT o.*
  FROM trade.orders o
 WHERE o.trade_date = %(trade_date)s AND o.broker_order_no IS NOT NULL AND o.updated_ts < %(listed_before)s;

-- name: db_now
SELECT clock_timestamp() AS now;

-- name: linked_numbers
SELECT broker_order_no FROM trade.orders WHERE trade_date = %(trade_date)s AND broker_order_no IS NOT NULL
UNION ALL
SELECT broker_order_no FROM trade.order_amendments WHERE trade_date = %(trade_date)s AND broker_order_no IS NOT NULL;

-- name: write_ahead_many
-- Several write-aheads in one statement (group commit); a row whose intent already has an order
-- is skipped and absent from the result.
INSERT INTO trade.orders (intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn, limit_price, status,
                          submit_attempts, attempt_ts, attempt_market_ts, claimed_by)
SELECT v.intent_id, v.trade_date, v.symbol, v.side, v.qty, v.order_type, v.ord_dvsn, v.limit_price, 'PENDING_SUBMIT',
       1, clock_timestamp(), v.market_ts, %(me)s
  FROM unnest(%(intent_ids)s::uuid[], %(trade_dates)s::date[], %(symbols)s::text[], %(sides)s::text[],
              %(qtys)s::bigint[], %(order_types)s::text[], %(ord_dvsns)s::text[], %(limit_prices)s::numeric[],
              %(market_ts)s::timestamptz[])
       AS v(intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn, limit_price, market_ts)
ON CONFLICT (intent_id) DO NOTHING
RETURNING order_id, intent_id;

-- name: link_acks
-- Acks of several orders in one statement (group commit): link each order's broker number, finish
-- its intent and write its OrderSubmitted event.  A row already linked to another number is left
-- out (the caller records it one by one); has_orphans says notices are waiting for it.
WITH v AS (
    SELECT * FROM unnest(%(order_ids)s::bigint[], %(odnos)s::text[], %(org_nos)s::text[], %(raws)s::jsonb[])
           AS v(order_id, odno, org_no, raw)
), linked AS (
    UPDATE trade.orders o
       SET broker_order_no = v.odno, broker_org_no = v.org_no,
           status = CASE WHEN o.status = ANY(%(awaiting_orders)s) THEN 'SUBMITTED' ELSE o.status END,
           submitted_ts = coalesce(o.submitted_ts, clock_timestamp()), raw = o.raw || v.raw,
           updated_ts = clock_timestamp()
      FROM v
     WHERE o.order_id = v.order_id AND (o.broker_order_no IS NULL OR o.broker_order_no = v.odno)
    RETURNING o.order_id, o.intent_id, o.symbol, o.side, o.qty, o.trade_date, o.broker_order_no
), finished AS (
    UPDATE trade.order_intents i
       SET status = 'SUBMITTED', status_reason = NULL, updated_ts = clock_timestamp()
      FROM linked
     WHERE i.intent_id = linked.intent_id AND i.status = 'PROCESSING'
    RETURNING i.intent_id
), logged AS (
    INSERT INTO ops.events (service, level, kind, message, symbol, intent_id, market_ts, data)
    SELECT 'execution', 'INFO', 'OrderSubmitted',
           format('order %%s: %%s %%s %%s', broker_order_no, side, qty, symbol), symbol, intent_id,
           %(market_ts)s, jsonb_build_object('order_id', order_id, 'broker_order_no', broker_order_no)
      FROM linked
    RETURNING event_id
)
SELECT l.*,
       EXISTS (SELECT 1 FROM market.broker_notices n JOIN trade.notice_log nl ON nl.notice_id = n.notice_id
                WHERE nl.status = 'ORPHAN' AND n.trade_date = l.trade_date
                  AND (n.odno = l.broker_order_no OR n.oodno = l.broker_order_no)) AS has_orphans
  FROM linked l;
