-- Execution's comparisons of our positions with the broker's (trade.position_checks).

-- name: drift_since
-- The newest comparison, if it is DRIFT and newer than the one already acted on.
SELECT check_id, checked_ts, verdict, diffs
  FROM trade.position_checks
 WHERE check_id > %(after)s
 ORDER BY check_id DESC
 LIMIT 1;

-- name: holding_confirmed
-- Whether the broker's holdings, asked for at or after %(since)s (market time), agreed with our
-- fills for this symbol: the newest such comparison does not list it among its differences.  No
-- comparison since then: not confirmed (yet).
SELECT NOT (diffs @> jsonb_build_array(jsonb_build_object('symbol', %(symbol)s::text))) AS agrees
  FROM trade.position_checks
 WHERE market_ts >= %(since)s
 ORDER BY check_id DESC
 LIMIT 1;
