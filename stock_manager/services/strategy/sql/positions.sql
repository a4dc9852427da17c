-- Positions rebuilt from fills, round trips, the book for risk, the daily summary.

-- name: positions_gate
-- One rebuild at a time across processes; the rebuild is deterministic, this only avoids churn.
SELECT pg_advisory_xact_lock(%(lock_class)s, %(lock_key)s);

-- name: changed_symbols
-- Symbols whose fills differ from what position_state reflects.  A count as well as the newest id,
-- because a fill committed late may carry a lower id than one already seen.
SELECT x.symbol FROM (
    SELECT f.symbol, count(*)::int AS n, max(f.fill_id) AS last_id
      FROM trade.fills f
     GROUP BY f.symbol
    EXCEPT
    SELECT symbol, fills_count, last_fill_id FROM trade.position_state
) x
ORDER BY x.symbol;

-- name: fill_symbols
SELECT DISTINCT symbol FROM trade.fills ORDER BY symbol;

-- name: fills_of_symbol
SELECT f.fill_id, f.order_id, f.side, f.qty, f.price, f.fee, f.tax, f.ts,
       o.intent_id, o.qty AS order_qty,
       CASE WHEN o.status IN ('FILLED', 'CANCELLED', 'REJECTED', 'ERROR') THEN o.filled_qty END AS order_filled_qty,
       i.reason, i.worker_id, i.strategy_version, i.params_version, ic.ref_price
  FROM trade.fills f
  JOIN trade.orders o ON o.order_id = f.order_id
  LEFT JOIN trade.order_intents i ON i.intent_id = o.intent_id
  LEFT JOIN trade.intent_context ic ON ic.intent_id = o.intent_id
 WHERE f.symbol = %(symbol)s
 ORDER BY f.fill_id;

-- name: position_row
SELECT symbol, qty, avg_price, realized_pnl, fees, taxes, high_water_price, entry_price, entry_ts, worker_id,
       strategy_version, params_version, last_fill_id, fills_count, trip_first_fill_id, exit_stage,
       entry_intent_id, status
  FROM trade.position_state WHERE symbol = %(symbol)s;

-- name: all_positions
SELECT symbol, qty, avg_price, fills_count, last_fill_id, trip_first_fill_id, status
  FROM trade.position_state ORDER BY symbol;

-- name: upsert_position
INSERT INTO trade.position_state AS p (symbol, qty, avg_price, realized_pnl, fees, taxes, high_water_price,
                                       entry_price, entry_ts, worker_id, strategy_version, params_version,
                                       last_fill_id, fills_count, trip_first_fill_id, exit_stage,
                                       entry_intent_id, status, updated_ts)
VALUES (%(symbol)s, %(qty)s, %(avg_price)s, %(realized_pnl)s, %(fees)s, %(taxes)s, %(high_water_price)s,
        %(entry_price)s, %(entry_ts)s, %(worker_id)s, %(strategy_version)s, %(params_version)s,
        %(last_fill_id)s, %(fills_count)s, %(trip_first_fill_id)s, 0, %(entry_intent_id)s, %(status)s,
        clock_timestamp())
ON CONFLICT (symbol) DO UPDATE
   SET qty = EXCLUDED.qty,
       avg_price = EXCLUDED.avg_price,
       realized_pnl = EXCLUDED.realized_pnl,
       fees = EXCLUDED.fees,
       taxes = EXCLUDED.taxes,
       high_water_price = CASE WHEN p.trip_first_fill_id IS NOT DISTINCT FROM EXCLUDED.trip_first_fill_id
                               THEN greatest(p.high_water_price, EXCLUDED.high_water_price)
                               ELSE EXCLUDED.high_water_price END,
       entry_price = EXCLUDED.entry_price,
       entry_ts = EXCLUDED.entry_ts,
       worker_id = CASE WHEN p.trip_first_fill_id IS NOT DISTINCT FROM EXCLUDED.trip_first_fill_id
                             AND p.worker_id IS NOT NULL
                        THEN p.worker_id ELSE EXCLUDED.worker_id END,
       strategy_version = EXCLUDED.strategy_version,
       params_version = EXCLUDED.params_version,
       last_fill_id = EXCLUDED.last_fill_id,
       fills_count = EXCLUDED.fills_count,
       exit_stage = CASE WHEN p.trip_first_fill_id IS NOT DISTINCT FROM EXCLUDED.trip_first_fill_id
                         THEN p.exit_stage ELSE 0 END,
       trip_first_fill_id = EXCLUDED.trip_first_fill_id,
       entry_intent_id = EXCLUDED.entry_intent_id,
       status = EXCLUDED.status,
       updated_ts = clock_timestamp()
RETURNING symbol, qty, status;

-- name: upsert_round_trip
INSERT INTO trade.round_trips AS t (symbol, first_fill_id, last_fill_id, trade_date, entry_ts, exit_ts, qty,
                                    buy_amount, sell_amount, avg_entry_price, avg_exit_price, fees, taxes, pnl,
                                    exit_reason, forced, worker_id, entry_intent_id, strategy_version,
                                    params_version, buy_orders, sell_orders, partial_orders, entry_slippage_pct,
                                    exit_slippage_pct, entry_context)
VALUES (%(symbol)s, %(first_fill_id)s, %(last_fill_id)s, %(trade_date)s, %(entry_ts)s, %(exit_ts)s, %(qty)s,
        %(buy_amount)s, %(sell_amount)s, %(avg_entry_price)s, %(avg_exit_price)s, %(fees)s, %(taxes)s, %(pnl)s,
        %(exit_reason)s, %(forced)s, %(worker_id)s, %(entry_intent_id)s, %(strategy_version)s,
        %(params_version)s, %(buy_orders)s, %(sell_orders)s, %(partial_orders)s, %(entry_slippage_pct)s,
        %(exit_slippage_pct)s,
        coalesce((SELECT ic.context FROM trade.intent_context ic WHERE ic.intent_id = %(entry_intent_id)s),
                 '{}'::jsonb))
ON CONFLICT (symbol, first_fill_id) DO UPDATE
   SET last_fill_id = EXCLUDED.last_fill_id, trade_date = EXCLUDED.trade_date, exit_ts = EXCLUDED.exit_ts,
       qty = EXCLUDED.qty, buy_amount = EXCLUDED.buy_amount, sell_amount = EXCLUDED.sell_amount,
       avg_entry_price = EXCLUDED.avg_entry_price, avg_exit_price = EXCLUDED.avg_exit_price,
       fees = EXCLUDED.fees, taxes = EXCLUDED.taxes, pnl = EXCLUDED.pnl, exit_reason = EXCLUDED.exit_reason,
       forced = EXCLUDED.forced, buy_orders = EXCLUDED.buy_orders, sell_orders = EXCLUDED.sell_orders,
       partial_orders = EXCLUDED.partial_orders, entry_slippage_pct = EXCLUDED.entry_slippage_pct,
       exit_slippage_pct = EXCLUDED.exit_slippage_pct, updated_ts = clock_timestamp()
 WHERE (t.last_fill_id, t.pnl) IS DISTINCT FROM (EXCLUDED.last_fill_id, EXCLUDED.pnl)
RETURNING trip_id, (xmax = 0) AS inserted, trade_date, pnl, exit_reason;

-- name: new_fills_of_symbol
SELECT fill_id, side, qty, price, fee, tax, ts FROM trade.fills
 WHERE symbol = %(symbol)s AND fill_id > %(after)s ORDER BY fill_id;

-- name: set_high_water
UPDATE trade.position_state
   SET high_water_price = greatest(coalesce(high_water_price, 0), %(price)s)
 WHERE symbol = %(symbol)s AND status = 'OPEN' AND coalesce(high_water_price, 0) < %(price)s;

-- name: set_exit_stage
UPDATE trade.position_state SET exit_stage = %(stage)s, updated_ts = clock_timestamp()
 WHERE symbol = %(symbol)s AND trip_first_fill_id = %(trip)s;

-- name: adopt_position
UPDATE trade.position_state SET worker_id = %(worker_id)s, updated_ts = clock_timestamp()
 WHERE symbol = %(symbol)s AND status = 'OPEN'
RETURNING symbol, qty;

-- name: orphan_positions
-- Open positions nobody holds a live lock on: their worker died or gave up; any SCAN worker adopts.
SELECT p.symbol, p.qty, p.worker_id FROM trade.position_state p
 WHERE p.status = 'OPEN'
   AND NOT EXISTS (SELECT 1 FROM trade.symbol_locks l
                    WHERE l.symbol = p.symbol AND l.expires_ts > clock_timestamp())
 ORDER BY p.updated_ts
 LIMIT 5;

-- name: open_book
SELECT p.symbol, p.qty, p.avg_price, p.realized_pnl, p.worker_id, p.trip_first_fill_id,
       b.price, b.bid, b.ask, b.turnover
  FROM trade.position_state p
  LEFT JOIN market.prices_best b ON b.symbol = p.symbol
 WHERE p.status = 'OPEN'
 ORDER BY p.symbol;

-- name: realized_on_date
SELECT coalesce(sum(pnl), 0)::numeric(20, 2) AS pnl, count(*)::int AS n
  FROM trade.round_trips WHERE trade_date = %(trade_date)s;

-- name: trips_of_date
-- In the order they closed: the summary's drawdown walks them so.
SELECT symbol, pnl, fees, taxes, exit_reason, forced, partial_orders, entry_slippage_pct, exit_slippage_pct,
       entry_context
  FROM trade.round_trips WHERE trade_date = %(trade_date)s
 ORDER BY exit_ts, trip_id;

-- name: unfilled_on_date
-- The last word on each symbol the liquidation could not finish that day (which stage, how many).
SELECT symbol, data FROM (
    SELECT DISTINCT ON (symbol) event_id, symbol, data FROM ops.events
     WHERE service = 'strategy' AND kind = 'LiquidationIncomplete'
       AND market_ts >= %(lo)s AND market_ts < %(hi)s
     ORDER BY symbol, event_id DESC
) x
 ORDER BY event_id;

-- name: upsert_daily_summary
INSERT INTO trade.daily_summaries (trade_date, realized_pnl, trades_count, wins, losses, win_rate, avg_pnl, max_loss,
                                   fees, taxes, profit_factor, max_drawdown, notes, updated_ts)
VALUES (%(trade_date)s, %(realized_pnl)s, %(trades_count)s, %(wins)s, %(losses)s, %(win_rate)s, %(avg_pnl)s,
        %(max_loss)s, %(fees)s, %(taxes)s, %(profit_factor)s, %(max_drawdown)s, %(notes)s, clock_timestamp())
ON CONFLICT (trade_date) DO UPDATE
   SET realized_pnl = EXCLUDED.realized_pnl, trades_count = EXCLUDED.trades_count, wins = EXCLUDED.wins,
       losses = EXCLUDED.losses, win_rate = EXCLUDED.win_rate, avg_pnl = EXCLUDED.avg_pnl,
       max_loss = EXCLUDED.max_loss, fees = EXCLUDED.fees, taxes = EXCLUDED.taxes,
       profit_factor = EXCLUDED.profit_factor, max_drawdown = EXCLUDED.max_drawdown, notes = EXCLUDED.notes,
       updated_ts = clock_timestamp();

-- name: insert_reentry
INSERT INTO trade.reentry_candidates (symbol, exit_reason, exit_price, exited_ts, cooldown_until)
VALUES (%(symbol)s, %(exit_reason)s, %(exit_price)s, %(exited_ts)s, %(cooldown_until)s)
RETURNING reentry_id;

-- name: reentry_blocked
SELECT DISTINCT symbol FROM trade.reentry_candidates
 WHERE status IN ('WAITING', 'ARMED') AND cooldown_until > %(now)s;

-- name: arm_reentry
UPDATE trade.reentry_candidates SET status = 'ARMED', updated_ts = clock_timestamp()
 WHERE status = 'WAITING' AND cooldown_until <= %(now)s
RETURNING symbol;

-- name: use_reentry
UPDATE trade.reentry_candidates SET status = 'USED', updated_ts = clock_timestamp()
 WHERE symbol = %(symbol)s AND status = 'ARMED';

-- name: expire_reentry
UPDATE trade.reentry_candidates SET status = 'EXPIRED', updated_ts = clock_timestamp()
 WHERE status IN ('WAITING', 'ARMED') AND exited_ts < %(before)s;
