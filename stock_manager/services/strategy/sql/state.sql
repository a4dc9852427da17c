-- Trading state and strategy parameters.

-- name: trading_state
SELECT state, reason, changed_by, changed_ts FROM trade.trading_state WHERE id = 1;

-- name: set_trading_state
UPDATE trade.trading_state
   SET state = %(state)s, reason = %(reason)s, changed_by = %(changed_by)s, changed_ts = clock_timestamp()
 WHERE id = 1
RETURNING state;

-- name: params_for_date
SELECT params_version, effective_date, strategy_version, params FROM trade.strategy_params
 WHERE strategy_version = %(strategy_version)s AND effective_date <= %(trade_date)s
 ORDER BY effective_date DESC
 LIMIT 1;

-- name: insert_params
INSERT INTO trade.strategy_params (params_version, effective_date, strategy_version, params, note)
VALUES (%(params_version)s, %(effective_date)s, %(strategy_version)s, %(params)s, %(note)s)
ON CONFLICT DO NOTHING;

-- name: pricesync_liveness
-- Wall seconds on the database's clock (every process agrees on it) since PriceSync last beat:
-- the newest beat of an instance still running, and of any instance (a stopped one included).
SELECT extract(epoch FROM clock_timestamp()
                   - max(beat_ts) FILTER (WHERE status IN ('STARTING', 'RUNNING', 'DEGRADED')))::float8 AS live_age_s,
       extract(epoch FROM clock_timestamp() - max(beat_ts))::float8 AS any_age_s
  FROM ops.heartbeats
 WHERE service = 'pricesync';

-- name: move_trading_state
-- Compare-and-set: moves only from the row exactly as it was read, so a change made in between
-- (an operator's halt, flatten or resume, another Strategy's move) is never overwritten.
UPDATE trade.trading_state
   SET state = %(state)s, reason = %(reason)s, changed_by = %(changed_by)s, changed_ts = clock_timestamp()
 WHERE id = 1 AND state = %(from_state)s AND reason IS NOT DISTINCT FROM %(from_reason)s
   AND changed_ts = %(from_ts)s
RETURNING state, reason, changed_ts;
