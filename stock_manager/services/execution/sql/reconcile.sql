-- name: take_lease
-- Take the lease (free, or lapsed) or renew it (ours and still running).  Its epoch rises whenever
-- it is taken, by another process or by us after it lapsed; only a renewal in time keeps it, so a
-- pass begun under an older epoch can write nothing (trade.lease_check).
INSERT INTO trade.leader_leases (name, holder, acquired_ts, expires_ts, epoch)
VALUES (%(name)s, %(me)s, clock_timestamp(), clock_timestamp() + make_interval(secs => %(ttl_s)s), 1)
ON CONFLICT (name) DO UPDATE
   SET holder = EXCLUDED.holder,
       epoch = CASE WHEN trade.leader_leases.holder = EXCLUDED.holder
                         AND trade.leader_leases.expires_ts > clock_timestamp()
                    THEN trade.leader_leases.epoch ELSE trade.leader_leases.epoch + 1 END,
       acquired_ts = CASE WHEN trade.leader_leases.holder = EXCLUDED.holder
                               AND trade.leader_leases.expires_ts > clock_timestamp()
                          THEN trade.leader_leases.acquired_ts ELSE clock_timestamp() END,
       expires_ts = EXCLUDED.expires_ts
 WHERE trade.leader_leases.holder = EXCLUDED.holder OR trade.leader_leases.expires_ts < clock_timestamp()
RETURNING holder, epoch;

-- name: release_lease
-- At a clean stop: let the next process take the lease at once.  The row stays, with its epoch, so
-- epochs only ever rise.
UPDATE trade.leader_leases SET expires_ts = clock_timestamp() - interval '1 millisecond'
 WHERE name = %(name)s AND holder = %(me)s;

-- name: claim_cancel_requests
-- A request waits while its order's broker number is not known yet (in doubt).
WITH picked AS (
    SELECT r.request_id
      FROM trade.cancel_requests r
      JOIN trade.orders o ON o.order_id = r.order_id
     WHERE r.status = 'NEW'
       AND (o.broker_order_no IS NOT NULL OR NOT o.status = ANY(%(open_orders)s))
     ORDER BY r.created_ts
     LIMIT %(batch)s
       FOR UPDATE OF r SKIP LOCKED
)
UPDATE trade.cancel_requests r
   SET status = 'PROCESSING', updated_ts = clock_timestamp()
  FROM picked
 WHERE r.request_id = picked.request_id
RETURNING r.*;

-- name: finish_cancel_request
UPDATE trade.cancel_requests
   SET status = %(status)s, status_reason = %(reason)s, updated_ts = clock_timestamp()
 WHERE request_id = %(request_id)s;

-- name: working_order_dates
SELECT DISTINCT trade_date FROM trade.orders WHERE status = ANY(%(working_orders)s);

-- name: open_amendments
SELECT a.*, o.broker_order_no AS order_broker_no, o.broker_org_no AS order_org_no
  FROM trade.order_amendments a
  JOIN trade.orders o ON o.order_id = a.order_id
 WHERE a.status = ANY(%(awaiting_amendments)s)
   AND a.updated_ts < clock_timestamp() - make_interval(secs => %(after_s)s);

-- name: amendments_of_order
SELECT * FROM trade.order_amendments WHERE order_id = %(order_id)s ORDER BY amendment_id;

-- name: listing_horizon
-- How far back a day's broker list must reach: the oldest attempt among the orders and amendments
-- whose outcome or fills still need the broker's word.  NULL when nothing is open; unknown_attempt
-- when one has no attempt time (then only the whole list will do).
WITH open_orders AS (
    SELECT attempt_market_ts FROM trade.orders
     WHERE trade_date = %(trade_date)s
       AND (status = ANY(%(open_orders)s) OR fills_missing_since IS NOT NULL)
    UNION ALL
    SELECT attempt_market_ts FROM trade.order_amendments
     WHERE trade_date = %(trade_date)s AND status = ANY(%(awaiting_amendments)s)
)
SELECT min(attempt_market_ts) AS horizon, coalesce(bool_or(attempt_market_ts IS NULL), false) AS unknown_attempt
  FROM open_orders;

-- name: record_manual_order
-- A broker order that is none of ours (placed at HTS/MTS): recorded with no intent, origin MANUAL,
-- by the reconciler (fenced).  It is created PENDING_SUBMIT like every order, with its journal row,
-- and linked to its broker number at once (FOUND, same transaction).
WITH recorded AS (
    INSERT INTO trade.orders (intent_id, origin, trade_date, symbol, side, qty, order_type, ord_dvsn, limit_price,
                              status, status_reason, submit_attempts, attempt_market_ts)
    SELECT NULL, 'MANUAL', %(trade_date)s, %(symbol)s, %(side)s, %(qty)s, %(order_type)s, %(ord_dvsn)s,
           %(limit_price)s::numeric, 'PENDING_SUBMIT', 'placed at the broker outside stock-manager', 0,
           %(at)s::timestamptz
     WHERE trade.lease_check(%(lease)s, %(holder)s, %(epoch)s)
    RETURNING order_id, attempt_market_ts
), journal AS (
    INSERT INTO trade.order_events (order_id, event, from_status, to_status, attempt, reason, epoch, actor,
                                    market_ts)
    SELECT order_id, 'CREATED', 'NONE', 'PENDING_SUBMIT', 0, 'placed at the broker outside stock-manager',
           %(epoch)s::bigint, %(me)s, attempt_market_ts
      FROM recorded
)
SELECT order_id FROM recorded;

-- name: ledger_positions
-- Our holdings as the fills say (every day's, manual orders' included), with what they reflect.
SELECT symbol, sum(CASE WHEN side = 'BUY' THEN qty ELSE -qty END)::bigint AS qty
  FROM trade.fills
 GROUP BY symbol;

-- name: ledger_mark
-- Changes when any fill is recorded: a comparison is valid only if this is the same before and after.
SELECT count(*)::bigint AS n, coalesce(max(fill_id), 0) AS last_id FROM trade.fills;

-- name: last_position_check
SELECT check_id, verdict, diffs FROM trade.position_checks ORDER BY check_id DESC LIMIT 1;

-- name: insert_position_check
INSERT INTO trade.position_checks (market_ts, verdict, symbols, diffs)
SELECT %(market_ts)s, %(verdict)s, %(symbols)s, %(diffs)s
 WHERE trade.lease_check(%(lease)s, %(holder)s, %(epoch)s)
RETURNING check_id;

-- name: awaiting_broker
-- Is anything of ours still waiting for the broker's word (an order or amendment written ahead or in
-- doubt, however young or old)?  Until it is resolved, an unlinked broker order may be one of ours.
SELECT EXISTS (SELECT 1 FROM trade.orders WHERE status = ANY(%(awaiting_orders)s))
    OR EXISTS (SELECT 1 FROM trade.order_amendments WHERE status = ANY(%(awaiting_amendments)s)) AS waiting;

-- name: symbols_in_flight
-- Symbols whose fills may still be on their way: an order not final, one the reconciler found short
-- of the broker's fills, or one with an amendment not settled.  A difference there is not drift yet.
SELECT DISTINCT o.symbol
  FROM trade.orders o
 WHERE o.status = ANY(%(open_orders)s)
    OR o.fills_missing_since IS NOT NULL
UNION
SELECT o.symbol
  FROM trade.order_amendments a
  JOIN trade.orders o ON o.order_id = a.order_id
 WHERE a.status = ANY(%(awaiting_amendments)s);
