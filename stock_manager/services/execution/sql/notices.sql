-- name: unapplied_notices
SELECT n.*
  FROM market.broker_notices n
 WHERE n.notice_id > %(floor)s
   AND NOT EXISTS (SELECT 1 FROM trade.notice_log l WHERE l.notice_id = n.notice_id)
 ORDER BY n.notice_id
 LIMIT %(limit)s;

-- name: orphans_for
SELECT n.*
  FROM market.broker_notices n
  JOIN trade.notice_log l ON l.notice_id = n.notice_id AND l.status = 'ORPHAN'
 WHERE n.trade_date = %(trade_date)s AND (n.odno = %(odno)s OR n.oodno = %(odno)s)
 ORDER BY n.notice_id
   FOR UPDATE OF l;

-- name: claim_notice
-- The first Execution to log a notice applies it; everyone else skips it.
INSERT INTO trade.notice_log (notice_id, status) VALUES (%(notice_id)s, 'APPLIED')
ON CONFLICT (notice_id) DO NOTHING
RETURNING notice_id;

-- name: log_notice
UPDATE trade.notice_log
   SET status = %(status)s, order_id = %(order_id)s, fill_id = %(fill_id)s, detail = %(detail)s,
       applied_ts = clock_timestamp()
 WHERE notice_id = %(notice_id)s;

-- name: max_logged_notice
SELECT coalesce(max(notice_id), 0) AS n FROM trade.notice_log;

-- name: feed_status
SELECT connected, notices_subscribed, updated_ts,
       extract(epoch FROM clock_timestamp() - updated_ts)::float8 AS age_s
  FROM market.feed_status WHERE feed = 'ws';
