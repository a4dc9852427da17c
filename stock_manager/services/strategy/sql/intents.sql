-- Intents Strategy writes, what became of them, and the sells already on their way.

-- name: entry_gate
-- Serialises entry decisions across every Strategy process for one transaction, so two workers
-- can never both pass "positions < limit" and both buy.
SELECT pg_advisory_xact_lock(%(lock_class)s, %(lock_key)s);

-- name: insert_intent
INSERT INTO trade.order_intents (action_key, symbol, side, intent_type, qty, order_type, limit_price, worker_id,
                                 reason, strategy_version, params_version, market_ts)
VALUES (%(action_key)s, %(symbol)s, %(side)s, %(intent_type)s, %(qty)s, %(order_type)s, %(limit_price)s,
        %(worker_id)s, %(reason)s, %(strategy_version)s, %(params_version)s, %(market_ts)s)
ON CONFLICT (action_key) DO NOTHING
RETURNING intent_id, status, created_ts;

-- name: intent_by_key
SELECT intent_id, status, created_ts FROM trade.order_intents WHERE action_key = %(action_key)s;

-- name: insert_intent_context
INSERT INTO trade.intent_context (intent_id, symbol, worker_id, ref_price, candidate_id, context, market_ts)
VALUES (%(intent_id)s, %(symbol)s, %(worker_id)s, %(ref_price)s, %(candidate_id)s, %(context)s, %(market_ts)s)
ON CONFLICT (intent_id) DO NOTHING;

-- name: intent_outcome
SELECT i.intent_id, i.symbol, i.side, i.intent_type, i.qty, i.status AS intent_status,
       i.status_reason AS intent_reason, o.order_id, o.status AS order_status, o.status_reason AS order_reason,
       o.qty AS order_qty, o.filled_qty, o.cancelled_qty, o.broker_order_no,
       extract(epoch FROM clock_timestamp() - coalesce(o.submitted_ts, o.created_ts))::float8 AS order_age_s
  FROM trade.order_intents i
  LEFT JOIN trade.orders o ON o.intent_id = i.intent_id
 WHERE i.intent_id = %(intent_id)s;

-- name: open_sell_qty
-- Shares of a symbol already on their way to be sold: intents Execution has not turned into an
-- order yet, plus the unfilled part of open sell orders; only of the given order types, if any
-- (after the close, an order of an earlier session is dead whatever its row says yet).
SELECT coalesce(sum(x.q), 0)::bigint AS qty, count(*)::int AS n FROM (
    SELECT i.qty AS q FROM trade.order_intents i
     WHERE i.symbol = %(symbol)s AND i.side = 'SELL' AND i.status = ANY(%(open_intents)s)
       AND (%(types)s::text[] IS NULL OR i.order_type = ANY(%(types)s::text[]))
       AND NOT EXISTS (SELECT 1 FROM trade.orders o WHERE o.intent_id = i.intent_id)
    UNION ALL
    SELECT o.qty - o.filled_qty - o.cancelled_qty FROM trade.orders o
     WHERE o.symbol = %(symbol)s AND o.side = 'SELL'
       AND (%(types)s::text[] IS NULL OR o.order_type = ANY(%(types)s::text[]))
       AND o.status = ANY(%(open_orders)s)
) x;

-- name: count_exit_intents
-- The sells of one round trip; only of the given order types and reasons since the given time, if any.
SELECT count(*)::int AS n FROM trade.order_intents
 WHERE symbol = %(symbol)s AND side = 'SELL' AND starts_with(action_key, %(prefix)s)
   AND (%(types)s::text[] IS NULL OR order_type = ANY(%(types)s::text[]))
   AND (%(reasons)s::text[] IS NULL OR reason = ANY(%(reasons)s::text[]))
   AND (%(since)s::timestamptz IS NULL OR market_ts >= %(since)s::timestamptz);

-- name: pending_entries
-- Cash the broker holds or will hold for entries not yet filled (a market buy at the upper limit).
SELECT x.symbol, sum(x.open_qty * x.reserve)::numeric(20, 2) AS reserved, count(*)::int AS n FROM (
    SELECT i.symbol, i.qty AS open_qty,
           coalesce(i.limit_price, s.upper_limit, p.price * 1.3) AS reserve
      FROM trade.order_intents i
      LEFT JOIN market.symbols s ON s.symbol = i.symbol
      LEFT JOIN market.prices_best p ON p.symbol = i.symbol
     WHERE i.intent_type = 'ENTRY' AND i.status = ANY(%(open_intents)s)
       AND NOT EXISTS (SELECT 1 FROM trade.orders o WHERE o.intent_id = i.intent_id)
    UNION ALL
    SELECT o.symbol, o.qty - o.filled_qty - o.cancelled_qty,
           coalesce(o.limit_price, s.upper_limit, p.price * 1.3)
      FROM trade.orders o
      LEFT JOIN market.symbols s ON s.symbol = o.symbol
      LEFT JOIN market.prices_best p ON p.symbol = o.symbol
     WHERE o.side = 'BUY' AND o.status = ANY(%(open_orders)s)
) x
 GROUP BY x.symbol;

-- name: stuck_sell_orders
SELECT o.order_id, o.intent_id, o.symbol, o.status, o.qty, o.filled_qty,
       extract(epoch FROM clock_timestamp() - coalesce(o.submitted_ts, o.created_ts))::float8 AS age_s
  FROM trade.orders o
 WHERE o.symbol = %(symbol)s AND o.side = 'SELL' AND o.status = ANY(%(working_orders)s)
   AND NOT EXISTS (SELECT 1 FROM trade.cancel_requests c
                    WHERE c.order_id = o.order_id AND c.status IN ('NEW', 'PROCESSING', 'DONE'));

-- name: insert_cancel_request
INSERT INTO trade.cancel_requests (request_key, order_id, intent_id, symbol, reason, requested_by)
VALUES (%(request_key)s, %(order_id)s, %(intent_id)s, %(symbol)s, %(reason)s, %(requested_by)s)
ON CONFLICT DO NOTHING
RETURNING request_id;

-- name: held_by_fills
-- What the fills say is held right now: position_state is rebuilt from them a moment later, so an
-- exit decided on it could sell shares a sale that just filled has already sold.
SELECT coalesce(sum(CASE WHEN side = 'BUY' THEN qty ELSE -qty END), 0)::bigint AS qty
  FROM trade.fills WHERE symbol = %(symbol)s;
