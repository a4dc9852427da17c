-- The day report (`stock-manager report`, the dashboard's /report): read as sm_readonly, one
-- trading day at a time.  A day is [lo, hi) in KST for fills and candles, trade_date for round trips
-- and the summary (a round trip's trade_date is its exit's).

-- name: newest_fill
-- The default day is the latest with fills (fills_ts_idx).
SELECT max(ts) AS ts FROM trade.fills;

-- name: fingerprint
-- Changes whenever anything the report draws changes; the dashboard renders a day once per value.
SELECT (SELECT count(*) FROM trade.fills WHERE ts >= %(lo)s AND ts < %(hi)s) AS fills,
       (SELECT max(fill_id) FROM trade.fills WHERE ts >= %(lo)s AND ts < %(hi)s) AS last_fill_id,
       (SELECT count(*) FROM trade.round_trips WHERE trade_date = %(trade_date)s) AS trips,
       (SELECT max(updated_ts) FROM trade.round_trips WHERE trade_date = %(trade_date)s) AS trips_ts,
       (SELECT updated_ts FROM trade.daily_summaries WHERE trade_date = %(trade_date)s) AS summary_ts,
       (SELECT max(c.updated_ts) FROM market.candles c
         WHERE c.symbol IN (SELECT symbol FROM trade.round_trips WHERE trade_date = %(trade_date)s)
           AND c.bucket_ts >= %(lo)s AND c.bucket_ts < %(hi)s) AS candles_ts;

-- name: round_trips
-- The day's round trips in the order they closed, with what the entry was decided on: the entry
-- intent's reason, its context (the signal's inputs and score) and the scan candidate's filters.
SELECT r.trip_id, r.symbol, s.name, r.first_fill_id, r.last_fill_id, r.entry_ts, r.exit_ts, r.qty,
       r.avg_entry_price, r.avg_exit_price, r.buy_amount, r.sell_amount, r.fees, r.taxes, r.pnl, r.exit_reason,
       r.forced, r.strategy_version, r.params_version, r.partial_orders, r.entry_slippage_pct,
       r.exit_slippage_pct,
       ei.reason AS entry_reason,
       coalesce(ec.context, r.entry_context) AS entry_context,
       c.score AS candidate_score, c.filters AS candidate_filters
  FROM trade.round_trips r
  LEFT JOIN market.symbols s ON s.symbol = r.symbol
  LEFT JOIN trade.order_intents ei ON ei.intent_id = r.entry_intent_id
  LEFT JOIN trade.intent_context ec ON ec.intent_id = r.entry_intent_id
  LEFT JOIN trade.candidates c ON c.candidate_id = ec.candidate_id
 WHERE r.trade_date = %(trade_date)s
 ORDER BY r.exit_ts, r.trip_id;

-- name: trip_fills
-- Every fill of the day's round trips (a trip is its symbol's fills first_fill_id..last_fill_id, as
-- Strategy folds them), with the intent each filled and the context it was decided on: the sells'
-- reasons are the exit rules that fired.
SELECT r.trip_id, f.fill_id, f.side, f.qty, f.price, f.fee, f.tax, f.ts,
       i.intent_id, i.intent_type, i.reason, i.strategy_version, i.params_version, ic.context, ic.ref_price
  FROM trade.round_trips r
  JOIN trade.fills f ON f.symbol = r.symbol AND f.fill_id BETWEEN r.first_fill_id AND r.last_fill_id
  JOIN trade.orders o ON o.order_id = f.order_id
  LEFT JOIN trade.order_intents i ON i.intent_id = o.intent_id
  LEFT JOIN trade.intent_context ic ON ic.intent_id = o.intent_id
 WHERE r.trade_date = %(trade_date)s
 ORDER BY r.trip_id, f.fill_id;

-- name: candles
-- One symbol's 1-minute bars around a round trip (the primary key's order).
SELECT bucket_ts, open, high, low, close, volume
  FROM market.candles
 WHERE symbol = %(symbol)s AND bucket_ts >= %(lo)s AND bucket_ts < %(hi)s
 ORDER BY bucket_ts;

-- name: costs
-- Fees and tax on every fill of the day, open positions' included.
SELECT side, count(*)::int AS fills, sum(qty)::bigint AS qty, sum(price * qty)::numeric(20, 2) AS amount,
       sum(fee)::numeric(20, 2) AS fees, sum(tax)::numeric(20, 2) AS taxes,
       min(ts) AS first_ts, max(ts) AS last_ts
  FROM trade.fills
 WHERE ts >= %(lo)s AND ts < %(hi)s
 GROUP BY side
 ORDER BY side;

-- name: daily_summary
SELECT trade_date, realized_pnl, trades_count, wins, losses, win_rate, avg_pnl, max_loss, fees, taxes,
       profit_factor, max_drawdown, notes, updated_ts
  FROM trade.daily_summaries
 WHERE trade_date = %(trade_date)s;

-- name: params
-- The parameters the day's trades were decided under (the filters' thresholds among them).
SELECT params_version, effective_date, strategy_version, params, note
  FROM trade.strategy_params
 WHERE params_version = ANY(%(versions)s)
 ORDER BY effective_date, params_version;
