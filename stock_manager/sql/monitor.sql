-- Reads of the monitor.* views (stock_manager/db/migrations/0013) for `stock-manager status`, the dashboard and
-- its /metrics.  Only the all-time counters read tables directly: the views are the one definition.

-- name: trading_state
SELECT state, reason, changed_by, changed_ts, age_s, market_now, trade_date FROM monitor.trading_state;

-- name: services
SELECT service, instances, alive_instances, newest_status, newest_pid, newest_beat_ts, market_ts, beat_age_s, state
  FROM monitor.services
 ORDER BY service;

-- name: instances
SELECT service, instance_id, pid, host, status, started_ts, beat_ts, market_ts, beat_age_s, alive, state
  FROM monitor.service_instances
 ORDER BY service, beat_ts DESC;

-- name: price_freshness
SELECT symbols, fresh, stale, no_verdict, newest_updated_ts, newest_age_s, oldest_age_s, pricesync_alive,
       ws_connected, notices_subscribed, watched, watched_fresh, watched_stale, universe, market_open
  FROM monitor.price_freshness;

-- name: price_watched
SELECT symbol, reasons, fresh, age_s, source, stale_reason
  FROM monitor.price_watched
 ORDER BY fresh, symbol
 LIMIT %(limit)s;

-- name: open_intents_summary
SELECT count(*)::int AS count, max(age_s) AS oldest_age_s FROM monitor.open_intents;

-- name: open_intents
SELECT intent_id, symbol, side, intent_type, qty, order_type, limit_price, status, worker_id, attempts, created_ts,
       age_s
  FROM monitor.open_intents
 ORDER BY created_ts
 LIMIT %(limit)s;

-- name: open_orders_summary
SELECT count(*)::int AS count, max(age_s) AS oldest_age_s FROM monitor.open_orders;

-- name: open_orders_by_status
SELECT status, count(*)::int AS count FROM monitor.open_orders GROUP BY status ORDER BY status;

-- name: open_orders
SELECT order_id, broker_order_no, symbol, side, qty, filled_qty, order_type, limit_price, status, submitted_ts,
       created_ts, age_s
  FROM monitor.open_orders
 ORDER BY created_ts
 LIMIT %(limit)s;

-- name: positions
SELECT symbol, name, market, qty, avg_price, cost, price, price_ts, price_age_s, price_fresh, market_value,
       unrealized_gross, exit_fee_est, exit_tax_est, unrealized_net, unrealized_pct, trip_realized, entry_ts,
       exit_stage, worker_id
  FROM monitor.positions
 ORDER BY symbol;

-- name: pnl_today
SELECT trade_date, realized_closed, realized_open, realized, unrealized_gross, unrealized_net, total, round_trips,
       wins, losses, open_positions, market_value, fills, buy_amount, sell_amount, fees, taxes, summary_realized
  FROM monitor.pnl_today;

-- name: pnl_series
SELECT fill_id, ts, symbol, side, qty, price, realized, cum_realized
  FROM monitor.fill_pnl_today
 ORDER BY ts, fill_id;

-- name: fills_today
SELECT fill_id, ts, symbol, side, qty, price, fee, tax, source, intent_type
  FROM monitor.fills_today
 ORDER BY ts DESC, fill_id DESC
 LIMIT %(limit)s;

-- name: corrections
SELECT event_id, ts, market_ts, service, level, kind, message, symbol, order_id, detail
  FROM monitor.reconciliation_events
 ORDER BY event_id DESC
 LIMIT %(limit)s;

-- name: recent_events
SELECT event_id, ts, market_ts, service, level, kind, message, symbol, repeats, first_ts, first_market_ts
  FROM monitor.recent_event_groups
 ORDER BY event_id DESC
 LIMIT %(limit)s;

-- name: latency
SELECT window_name, orders, attempt_p50_ms, attempt_p90_ms, attempt_p99_ms, attempt_max_ms, submitted,
       submit_p50_ms, submit_p90_ms, submit_p99_ms, submit_max_ms
  FROM monitor.order_latency_summary
 ORDER BY CASE window_name WHEN '5m' THEN 1 WHEN '1h' THEN 2 ELSE 3 END;

-- name: alert_conditions
SELECT condition_key, kind, severity, symbol, message, since_ts FROM monitor.alert_conditions ORDER BY since_ts;

-- name: recent_alerts
SELECT alert_id, kind, severity, symbol, message, status, created_ts, sent_ts
  FROM monitor.alert_log
 ORDER BY alert_id DESC
 LIMIT %(limit)s;

-- name: counters
SELECT (SELECT count(*) FROM trade.fills)::bigint AS fills_total,
       (SELECT count(*) FROM trade.orders)::bigint AS orders_total,
       (SELECT count(*) FROM trade.order_intents)::bigint AS intents_total;

-- name: reconciliation_counts
SELECT kind, count(*)::bigint AS count FROM monitor.reconciliation_events GROUP BY kind ORDER BY kind;

-- name: alert_counts
SELECT status, count(*)::bigint AS count FROM monitor.alert_log GROUP BY status ORDER BY status;
