-- monitor.market_open() follows the trading calendar (issue #15 point 4).
--
-- 0017 answered with the weekday rule (Mon-Fri 09:00-15:30), so StalePrice fired all day on a
-- holiday and from 09:00 on a day that opens at 10:00 (the first trading day of the year, the CSAT
-- day).  The calendar tables of 0019 are read here the way stock_manager.shared.calendar.layered
-- composes them (load_calendar), so the views and the services agree on when the session runs:
--   - the operator's override replaces the library's row for its date (kind and hours together);
--   - a date neither covers falls back to the weekday rule;
--   - KIS's 'N' closes the day whatever the others say; its 'Y' on a day they have closed opens it
--     at the regular hours (KIS says whether the day trades, not when).
-- The regular hours mirror shared/calendar.REGULAR_OPEN/REGULAR_CLOSE (tests/ops/test_views.py
-- keeps them equal, and compares this function with load_calendar on shifted and closed days).

CREATE OR REPLACE FUNCTION monitor.market_open() RETURNS boolean LANGUAGE sql STABLE AS $$
    WITH at AS (
        SELECT local::date AS day, local::time AS t
          FROM (SELECT monitor.market_now() AT TIME ZONE 'Asia/Seoul' AS local) n
    ),
    known AS (
        SELECT a.day, a.t,
               coalesce(o.kind, l.kind) AS kind,
               CASE WHEN o.trade_date IS NOT NULL THEN o.open_time ELSE l.open_time END AS open_time,
               CASE WHEN o.trade_date IS NOT NULL THEN o.close_time ELSE l.close_time END AS close_time,
               k.opnd_yn
          FROM at a
          LEFT JOIN ops.trading_day_overrides o ON o.trade_date = a.day
          LEFT JOIN ops.trading_days l ON l.trade_date = a.day
          LEFT JOIN ops.kis_holiday_checks k ON k.trade_date = a.day
    )
    SELECT CASE
               WHEN k.opnd_yn = 'N' THEN false
               WHEN k.kind = 'CLOSED' THEN k.opnd_yn IS NOT DISTINCT FROM 'Y'
                                           AND k.t >= time '09:00' AND k.t < time '15:30'
               WHEN k.kind IS NOT NULL THEN k.t >= k.open_time AND k.t < k.close_time
               ELSE extract(isodow FROM k.day) < 6 AND k.t >= time '09:00' AND k.t < time '15:30'
           END
      FROM known k
$$;

GRANT EXECUTE ON FUNCTION monitor.market_open() TO sm_pricesync, sm_strategy, sm_execution, sm_readonly, sm_dashboard;
