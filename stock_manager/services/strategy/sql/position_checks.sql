-- Execution's comparisons of our positions with the broker's (trade.position_checks).

-- name: drift_since
-- The newest comparison, if it is DRIFT and newer than the one already acted on.
SELECT check_id, checked_ts, verdict, diffs
  FROM trade.position_checks
 WHERE check_id > %(after)s
 ORDER BY check_id DESC
 LIMIT 1;
