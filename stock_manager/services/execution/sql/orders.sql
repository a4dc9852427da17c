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

-- name: set_broker_view
-- The reconciler's: what the broker's list said of the order (fenced by its lease epoch).
UPDATE trade.orders
   SET broker_filled_qty = greatest(broker_filled_qty, %(qty)s),
       broker_filled_amount = CASE WHEN %(qty)s >= broker_filled_qty THEN %(amount)s ELSE broker_filled_amount END,
       broker_seen_ts = %(seen_ts)s, fills_missing_since = %(missing_since)s, updated_ts = clock_timestamp()
 WHERE order_id = %(order_id)s AND trade.lease_check(%(lease)s, %(holder)s, %(epoch)s);

-- name: set_order_totals
-- Filled and cancelled quantities that leave the status where it is (a second partial fill, a
-- partial cancel); a change of status goes through apply_order_event instead.
UPDATE trade.orders
   SET filled_qty = %(filled_qty)s, filled_amount = %(filled_amount)s, cancelled_qty = %(cancelled_qty)s,
       updated_ts = clock_timestamp()
 WHERE order_id = %(order_id)s AND status = %(status)s AND trade.lease_check(%(lease)s, %(holder)s, %(epoch)s);

-- name: fill_totals
SELECT coalesce(sum(qty), 0)::bigint AS qty, coalesce(sum(qty * price), 0) AS amount,
       count(*) FILTER (WHERE source = 'RECONCILE') AS reconciled
  FROM trade.fills
 WHERE order_id = %(order_id)s;

-- name: insert_fill
-- A notice's fill, or the reconciler's for what the notices never reported (then fenced).
INSERT INTO trade.fills (order_id, exec_key, symbol, side, qty, price, fee, tax, ts, source)
SELECT %(order_id)s, %(exec_key)s, %(symbol)s, %(side)s, %(qty)s, %(price)s, %(fee)s, %(tax)s, %(ts)s, %(source)s
 WHERE trade.lease_check(%(lease)s, %(holder)s, %(epoch)s)
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
-- The write-ahead: several orders in one statement (group commit), each with its journal row.  A
-- row whose intent already has an order is skipped and absent from the result.
WITH written AS (
    INSERT INTO trade.orders (intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn, limit_price, status,
                              submit_attempts, attempt_ts, attempt_market_ts, claimed_by)
    SELECT v.intent_id, v.trade_date, v.symbol, v.side, v.qty, v.order_type, v.ord_dvsn, v.limit_price,
           'PENDING_SUBMIT', 1, clock_timestamp(), v.market_ts, %(me)s
      FROM unnest(%(intent_ids)s::uuid[], %(trade_dates)s::date[], %(symbols)s::text[], %(sides)s::text[],
                  %(qtys)s::bigint[], %(order_types)s::text[], %(ord_dvsns)s::text[], %(limit_prices)s::numeric[],
                  %(market_ts)s::timestamptz[])
           AS v(intent_id, trade_date, symbol, side, qty, order_type, ord_dvsn, limit_price, market_ts)
    ON CONFLICT (intent_id) DO NOTHING
    RETURNING order_id, intent_id, submit_attempts, attempt_market_ts
), journal AS (
    INSERT INTO trade.order_events (order_id, event, from_status, to_status, attempt, actor, market_ts)
    SELECT order_id, 'CREATED', 'NONE', 'PENDING_SUBMIT', submit_attempts, %(me)s, attempt_market_ts FROM written
)
SELECT order_id, intent_id, submit_attempts FROM written;

-- name: apply_order_event
-- The one write of an order's status (orders.py, apply): a compare-and-set on the status the
-- caller read, and on the attempt it wrote ahead when it names one; the journal row; and what the
-- step makes of the intent, if the intent still waits for it.  A reconciler's step carries its lease
-- epoch: trade.lease_check raises once the lease has moved on, and nothing is written.
WITH fence AS MATERIALIZED (
    SELECT trade.lease_check(%(lease)s, %(holder)s, %(epoch)s) AS held
), moved AS (
    UPDATE trade.orders o
       SET status = %(next)s::text,
           status_reason = coalesce(%(reason)s::text, o.status_reason),
           broker_order_no = coalesce(%(broker_order_no)s::text, o.broker_order_no),
           broker_org_no = coalesce(%(broker_org_no)s::text, o.broker_org_no),
           submitted_ts = CASE WHEN %(broker_order_no)s::text IS NULL THEN o.submitted_ts
                               ELSE coalesce(o.submitted_ts, clock_timestamp()) END,
           raw = CASE WHEN %(raw)s::jsonb IS NULL THEN o.raw ELSE o.raw || %(raw)s::jsonb END,
           filled_qty = coalesce(%(filled_qty)s::bigint, o.filled_qty),
           filled_amount = coalesce(%(filled_amount)s::numeric, o.filled_amount),
           cancelled_qty = coalesce(%(cancelled_qty)s::bigint, o.cancelled_qty),
           submit_attempts = o.submit_attempts + CASE WHEN %(new_attempt)s THEN 1 ELSE 0 END,
           attempt_ts = CASE WHEN %(new_attempt)s THEN clock_timestamp() ELSE o.attempt_ts END,
           attempt_market_ts = coalesce(%(attempt_market_ts)s::timestamptz, o.attempt_market_ts),
           claimed_by = coalesce(%(claimed_by)s::text, o.claimed_by),
           updated_ts = clock_timestamp()
      FROM fence
     WHERE fence.held AND o.order_id = %(id)s AND o.status = %(expected)s::text
       AND (%(attempt)s::integer IS NULL OR o.submit_attempts = %(attempt)s::integer)
       AND (%(broker_order_no)s::text IS NULL OR o.broker_order_no IS NULL
            OR o.broker_order_no = %(broker_order_no)s::text)
    RETURNING o.*
), journal AS (
    INSERT INTO trade.order_events (order_id, event, from_status, to_status, attempt, reason, broker_order_no,
                                    epoch, actor, market_ts)
    SELECT m.order_id, %(event)s::text, %(expected)s::text, m.status, m.submit_attempts, %(reason)s::text, m.broker_order_no,
           %(epoch)s::bigint, %(actor)s::text, %(market_ts)s::timestamptz
      FROM moved m
), outcome AS (
    UPDATE trade.order_intents i
       SET status = %(intent_status)s::text, status_reason = %(intent_reason)s::text, updated_ts = clock_timestamp()
      FROM moved m
     WHERE %(intent_status)s::text IS NOT NULL AND i.intent_id = m.intent_id AND i.status = 'PROCESSING'
)
SELECT f.held, m.* FROM fence f LEFT JOIN moved m ON true;

-- name: orphan_numbers
-- Which of these just-linked broker numbers have notices waiting for them (ORPHAN).
SELECT DISTINCT n.odno AS broker_order_no
  FROM market.broker_notices n
  JOIN trade.notice_log l ON l.notice_id = n.notice_id AND l.status = 'ORPHAN'
 WHERE n.trade_date = ANY(%(trade_dates)s::date[]) AND n.odno = ANY(%(odnos)s::text[])
UNION
SELECT DISTINCT n.oodno
  FROM market.broker_notices n
  JOIN trade.notice_log l ON l.notice_id = n.notice_id AND l.status = 'ORPHAN'
 WHERE n.trade_date = ANY(%(trade_dates)s::date[]) AND n.oodno = ANY(%(odnos)s::text[]);

-- name: insert_amendment
-- A cancel or modify written ahead, with its journal row.
WITH written AS (
    INSERT INTO trade.order_amendments (request_id, order_id, kind, trade_date, orgn_order_no, qty, price, ord_dvsn,
                                        status, attempt_market_ts)
    VALUES (%(request_id)s, %(order_id)s, %(kind)s, %(trade_date)s, %(orgn)s, %(qty)s, %(price)s, %(ord_dvsn)s,
            'PENDING_SUBMIT', %(market_ts)s)
    RETURNING amendment_id, order_id, attempt_market_ts
), journal AS (
    INSERT INTO trade.order_events (order_id, amendment_id, event, from_status, to_status, actor, market_ts)
    SELECT order_id, amendment_id, 'CREATED', 'NONE', 'PENDING_SUBMIT', %(me)s, attempt_market_ts FROM written
)
SELECT amendment_id FROM written;

-- name: apply_amendment_event
-- The one write of an amendment's status, as apply_order_event for orders; its step may finish the
-- cancel request it carries out (DONE or FAILED), if the request still waits for it.
WITH fence AS MATERIALIZED (
    SELECT trade.lease_check(%(lease)s, %(holder)s, %(epoch)s) AS held
), moved AS (
    UPDATE trade.order_amendments a
       SET status = %(next)s::text,
           status_reason = coalesce(%(reason)s::text, a.status_reason),
           broker_order_no = coalesce(%(broker_order_no)s::text, a.broker_order_no),
           raw = CASE WHEN %(raw)s::jsonb IS NULL THEN a.raw ELSE a.raw || %(raw)s::jsonb END,
           updated_ts = clock_timestamp()
      FROM fence
     WHERE fence.held AND a.amendment_id = %(id)s AND a.status = %(expected)s::text
    RETURNING a.*
), journal AS (
    INSERT INTO trade.order_events (order_id, amendment_id, event, from_status, to_status, reason, broker_order_no,
                                    epoch, actor, market_ts)
    SELECT m.order_id, m.amendment_id, %(event)s::text, %(expected)s::text, m.status, %(reason)s::text,
           m.broker_order_no, %(epoch)s::bigint, %(actor)s::text, %(market_ts)s::timestamptz
      FROM moved m
), outcome AS (
    UPDATE trade.cancel_requests r
       SET status = %(request_status)s::text, status_reason = %(request_reason)s::text, updated_ts = clock_timestamp()
      FROM moved m
     WHERE %(request_status)s::text IS NOT NULL AND r.request_id = m.request_id AND r.status = 'PROCESSING'
)
SELECT f.held, m.* FROM fence f LEFT JOIN moved m ON true;

-- name: submitted_events
-- The OrderSubmitted events of a batch of linked acks, in one statement.
INSERT INTO ops.events (service, level, kind, message, symbol, intent_id, market_ts, data)
SELECT 'execution', 'INFO', 'OrderSubmitted', format('order %%s: %%s %%s %%s', v.odno, v.side, v.qty, v.symbol),
       v.symbol, v.intent_id, %(market_ts)s, jsonb_build_object('order_id', v.order_id, 'broker_order_no', v.odno)
  FROM unnest(%(order_ids)s::bigint[], %(odnos)s::text[], %(sides)s::text[], %(qtys)s::bigint[],
              %(symbols)s::text[], %(intent_ids)s::uuid[]) AS v(order_id, odno, side, qty, symbol, intent_id);
