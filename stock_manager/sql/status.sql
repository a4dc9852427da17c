-- The CLI's own statements: the trading-state commands (as the owner, DATABASE_URL) and the
-- docker healthcheck (as sm_readonly).  What `status` shows is in monitor.sql.

-- name: set_trading_state
UPDATE trade.trading_state
   SET state = %(state)s, reason = %(reason)s, changed_by = %(changed_by)s, changed_ts = clock_timestamp()
 WHERE id = 1
RETURNING state;

-- name: insert_cli_event
INSERT INTO ops.events (service, level, kind, message, data)
VALUES ('cli', %(level)s, %(kind)s, %(message)s, %(data)s);

-- name: healthcheck
SELECT EXISTS (
           SELECT 1 FROM monitor.service_instances
            WHERE service = %(service)s AND status IN ('RUNNING', 'DEGRADED') AND beat_age_s <= %(max_age_s)s
       ) AS fresh;
