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
