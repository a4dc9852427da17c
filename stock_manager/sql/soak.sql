-- The soak's own statements (stock_manager/soak.py): seeding its fresh database, watching the run,
-- and reading what the system believes so the invariants can compare it with the simulator's truth.

-- name: insert_symbol
INSERT INTO market.symbols (symbol, name, market, base_price, upper_limit, lower_limit, prev_high, prev_low, halted)
VALUES (%(symbol)s, %(name)s, %(market)s, %(base_price)s, %(upper_limit)s, %(lower_limit)s, %(prev_high)s,
        %(prev_low)s, %(halted)s)
ON CONFLICT DO NOTHING;

-- name: insert_params
INSERT INTO trade.strategy_params (params_version, effective_date, strategy_version, params, note)
VALUES ('soak-' || %(strategy_version)s, %(effective_date)s, %(strategy_version)s, %(params)s,
        'soak: short indicators')
ON CONFLICT DO NOTHING;

-- name: double_holds
-- Symbols held by more than one live worker (a heartbeat within the lock TTL: a dead process holds nothing).
SELECT current_symbol, count(*) AS n
  FROM trade.workers
 WHERE status = 'HOLD' AND heartbeat_ts > clock_timestamp() - make_interval(secs => %(ttl_s)s)
 GROUP BY current_symbol
HAVING count(*) > 1;

-- name: unsettled
SELECT (SELECT count(*) FROM trade.order_intents WHERE status = ANY(%(open_intents)s)) AS intents,
       (SELECT count(*) FROM trade.orders WHERE status = ANY(%(awaiting_orders)s)) AS orders;

-- name: position_checks_since
-- Execution's comparisons of the broker's holdings with our fills made after a moment (wall time).
SELECT count(*) AS n FROM trade.position_checks WHERE checked_ts > %(since)s;

-- name: order_fills
SELECT o.broker_order_no, o.filled_qty, coalesce(sum(f.qty), 0) AS fill_qty,
       coalesce(sum(f.qty * f.price), 0) AS fill_amount
  FROM trade.orders o
  LEFT JOIN trade.fills f ON f.order_id = o.order_id
 WHERE o.broker_order_no IS NOT NULL
 GROUP BY o.order_id;

-- name: intents
SELECT intent_id, status FROM trade.order_intents;

-- name: orders
SELECT order_id, intent_id, origin, broker_order_no, status FROM trade.orders;

-- name: orders_before_origin
-- The same on a schema from before manual orders were recorded (no trade.orders.origin).
SELECT order_id, intent_id, broker_order_no, status FROM trade.orders;

-- name: amendment_numbers
SELECT broker_order_no FROM trade.order_amendments WHERE broker_order_no IS NOT NULL;

-- name: open_positions
SELECT symbol, qty FROM trade.position_state WHERE qty <> 0;

-- name: ledger_not_flat
-- Symbols whose fills do not net to zero: the ledger, not the derived position_state.
SELECT symbol, sum(CASE WHEN side = 'BUY' THEN qty ELSE -qty END)::bigint AS qty
  FROM trade.fills
 GROUP BY symbol
HAVING sum(CASE WHEN side = 'BUY' THEN qty ELSE -qty END) <> 0;

-- name: locks
SELECT symbol, worker_id FROM trade.symbol_locks;

-- name: summaries
SELECT trade_date, realized_pnl, trades_count FROM trade.daily_summaries;

-- name: day_closed
-- Strategy closed the day: the summary is written once the book is flat after the uncross.
SELECT count(*) AS n FROM trade.daily_summaries WHERE trade_date = %(trade_date)s;

-- name: fill_count
SELECT count(*) AS n FROM trade.fills;

-- name: manual_events
SELECT data ->> 'broker_order_no' AS broker_order_no, symbol, message
  FROM ops.events WHERE kind = 'ManualOrder';

-- name: share_refusals
-- Intents Execution refused for want of shares to sell, with what the refused sell was (when, which
-- order type, why it was written, at which stage of the close) so a failure says where to look.
SELECT e.symbol, e.message, e.market_ts, i.order_type, i.reason, i.context ->> 'stage' AS stage
  FROM ops.events e
  LEFT JOIN trade.order_intents i ON i.intent_id = e.intent_id
 WHERE e.kind = 'IntentRejected' AND e.message ILIKE '%%not enough shares%%'
 ORDER BY e.event_id;

-- name: sell_reasons
-- Why each of our sells of a symbol was written (the manual position must be sold by the system).
SELECT i.reason, sum(f.qty)::bigint AS qty, min(f.ts) AS first_fill,
       string_agg(DISTINCT o.order_type, '/' ORDER BY o.order_type) AS order_types
  FROM trade.fills f
  JOIN trade.orders o ON o.order_id = f.order_id
  JOIN trade.order_intents i ON i.intent_id = o.intent_id
 WHERE f.symbol = %(symbol)s AND f.side = 'SELL'
 GROUP BY i.reason
 ORDER BY i.reason;

-- name: sells_written
-- Every sell intent of a symbol, when (market time) and of which order type.
SELECT market_ts, order_type, reason FROM trade.order_intents
 WHERE symbol = %(symbol)s AND side = 'SELL'
 ORDER BY created_ts;

-- name: position_verdicts
SELECT (SELECT verdict FROM trade.position_checks ORDER BY check_id DESC LIMIT 1) AS latest,
       (SELECT diffs FROM trade.position_checks ORDER BY check_id DESC LIMIT 1) AS latest_diffs,
       count(*) AS checks,
       count(*) FILTER (WHERE verdict = 'MISMATCH') AS mismatches,
       count(*) FILTER (WHERE verdict = 'DRIFT') AS drifts
  FROM trade.position_checks;

-- name: drift_halts
-- Every time trading was halted because the positions drifted from the broker's, and the state now.
SELECT (SELECT count(*) FROM ops.events
         WHERE kind = 'TradingHalted' AND message LIKE 'POSITION_DRIFT%%') AS halts,
       s.state, s.reason
  FROM trade.trading_state s
 WHERE s.id = 1;
