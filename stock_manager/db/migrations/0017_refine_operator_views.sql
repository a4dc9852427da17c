-- The operator's view, as a new user reads it (issue #15).
--
-- 1. Price freshness for what matters.  PriceSync streams about 41 symbols over the WebSocket (the
--    KIS registration limit) and polls the rest, so most of a large universe is "stale" by design;
--    "41 fresh / 842 stale" read as a failure.  monitor.price_watched lists the symbols a decision
--    rests on -- held, locked by a worker, in the newest scan's signals, on the watch list -- with
--    their freshness; price_freshness gains the same counts (new columns at the end, so the old
--    ones keep their meaning) and the rest is shown as coverage.
-- 2. Alerts: a held symbol's price is not stale when no market is trading, so StalePrice waits
--    for the session; REDUCING is alerted as TradingReducing (it is not a halt: exits go on).
-- 3. Events: forced-liquidation retries (one MandatoryLiquidation per attempt) drowned the event
--    list; monitor.recent_event_groups folds repeats of one kind, service and symbol that follow
--    each other within five minutes into one row with a count.

-- When the regular KRX session runs at the market's time.  The hours mirror
-- stock_manager/shared/market_rules.SESSION_OPEN/SESSION_CLOSE (tests/ops/test_views.py keeps
-- them equal); holidays are not known here, so a holiday's StalePrice shows while PriceSync is
-- idle -- the cost is a spurious alert, never a missed one on a trading day.
CREATE FUNCTION monitor.market_open() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT extract(isodow FROM local) < 6
           AND local::time >= time '09:00' AND local::time < time '15:30'
      FROM (SELECT monitor.market_now() AT TIME ZONE 'Asia/Seoul' AS local) n
$$;

-- The symbols a decision rests on, each once, with why it matters and its price's freshness.
CREATE VIEW monitor.price_watched WITH (security_invoker = true) AS
WITH why AS (
    SELECT p.symbol, 'held' AS reason FROM trade.position_state p WHERE p.status = 'OPEN'
    UNION ALL
    SELECT l.symbol, 'locked' FROM trade.symbol_locks l WHERE l.expires_ts > clock_timestamp()
    UNION ALL
    SELECT c.symbol, 'candidate'
      FROM trade.candidates c
     WHERE c.signal
       AND c.scan_id = (SELECT n.scan_id FROM trade.candidates n ORDER BY n.candidate_id DESC LIMIT 1)
    UNION ALL
    SELECT w.symbol, 'watch' FROM trade.watchlist w
     WHERE w.expires_ts IS NULL OR w.expires_ts > monitor.market_now()
)
SELECT w.symbol,
       array_agg(DISTINCT w.reason ORDER BY w.reason) AS reasons,
       coalesce(bool_or(s.fresh), false) AS fresh,
       min(s.age_s) AS age_s,
       min(s.source) AS source,
       min(s.stale_reason) AS stale_reason
  FROM why w
  LEFT JOIN monitor.price_status s ON s.symbol = w.symbol
 GROUP BY w.symbol;

CREATE OR REPLACE VIEW monitor.price_freshness WITH (security_invoker = true) AS
SELECT count(*)::int AS symbols,
       count(*) FILTER (WHERE s.fresh)::int AS fresh,
       count(*) FILTER (WHERE NOT s.fresh)::int AS stale,
       count(*) FILTER (WHERE s.verdict IS NULL)::int AS no_verdict,
       max(s.updated_ts) AS newest_updated_ts,
       min(s.age_s) AS newest_age_s,
       max(s.age_s) AS oldest_age_s,
       (SELECT bool_or(i.alive) FROM monitor.service_instances i WHERE i.service = 'pricesync') AS pricesync_alive,
       (SELECT w.connected FROM market.feed_status w WHERE w.feed = 'ws') AS ws_connected,
       (SELECT w.notices_subscribed FROM market.feed_status w WHERE w.feed = 'ws') AS notices_subscribed,
       (SELECT count(*)::int FROM monitor.price_watched) AS watched,
       (SELECT count(*)::int FROM monitor.price_watched w WHERE w.fresh) AS watched_fresh,
       (SELECT count(*)::int FROM monitor.price_watched w WHERE NOT w.fresh) AS watched_stale,
       (SELECT count(*)::int FROM market.symbols) AS universe,
       monitor.market_open() AS market_open
  FROM monitor.price_status s;

CREATE OR REPLACE VIEW monitor.alert_conditions WITH (security_invoker = true) AS
SELECT 'trading_state:' || t.state || ':' || extract(epoch FROM t.changed_ts)::text AS condition_key,
       CASE t.state WHEN 'REDUCING' THEN 'TradingReducing' ELSE 'TradingHalted' END AS kind,
       'critical' AS severity,
       CASE t.state WHEN 'REDUCING' THEN 'TradingReducing:' ELSE 'TradingHalted:' END || t.state AS throttle_key,
       NULL::text AS symbol,
       format('trading state is %s since %s: %s (by %s)', t.state,
              to_char(t.changed_ts AT TIME ZONE 'Asia/Seoul', 'HH24:MI:SS'), coalesce(t.reason, '-'),
              t.changed_by) AS message,
       t.changed_ts AS since_ts
  FROM trade.trading_state t
 WHERE t.state <> 'ACTIVE'
UNION ALL
SELECT 'service_down:' || s.service || ':' || extract(epoch FROM s.newest_beat_ts)::text,
       'ServiceDown',
       'critical',
       'ServiceDown:' || s.service,
       NULL,
       format('%s is down: no heartbeat for %s s (last status %s, pid %s)', s.service,
              round(s.beat_age_s::numeric), s.newest_status, s.newest_pid),
       s.newest_beat_ts
  FROM monitor.services s
 WHERE s.state = 'down' AND s.service NOT IN ('dashboard', 'cli')
UNION ALL
SELECT 'stale_price:' || p.symbol || ':' || coalesce(extract(epoch FROM p.price_updated_ts)::text, 'none'),
       'StalePrice',
       'critical',
       'StalePrice:' || p.symbol,
       p.symbol,
       format('%s held (%s shares) but its price is stale: last %s, %s s ago', p.symbol, p.qty,
              coalesce(trim_scale(p.price)::text, 'none'), coalesce(round(p.price_age_s::numeric)::text, '?')),
       p.price_updated_ts
  FROM monitor.positions p
 WHERE NOT p.price_fresh AND monitor.market_open();

-- The newest events with repeats folded: a run of one kind, service and symbol whose events
-- follow each other within five minutes (wall clock) is one row -- the newest event's message,
-- how many there were and when the run began.
CREATE VIEW monitor.recent_event_groups WITH (security_invoker = true) AS
WITH recent AS (
    SELECT e.event_id, e.ts, e.market_ts, e.service, e.level, e.kind, e.message, e.symbol, e.worker_id
      FROM ops.events e
     ORDER BY e.event_id DESC
     LIMIT 1000
),
marked AS (
    SELECT r.*,
           CASE WHEN r.ts - lag(r.ts) OVER w < interval '5 minutes' THEN 0 ELSE 1 END AS starts_run
      FROM recent r
    WINDOW w AS (PARTITION BY r.kind, r.service, coalesce(r.symbol, '') ORDER BY r.event_id)
),
runs AS (
    SELECT m.*,
           sum(m.starts_run) OVER (PARTITION BY m.kind, m.service, coalesce(m.symbol, '') ORDER BY m.event_id) AS run
      FROM marked m
)
SELECT max(r.event_id) AS event_id,
       max(r.ts) AS ts,
       max(r.market_ts) AS market_ts,
       r.service,
       (array_agg(r.level ORDER BY r.event_id DESC))[1] AS level,
       r.kind,
       (array_agg(r.message ORDER BY r.event_id DESC))[1] AS message,
       r.symbol,
       (array_agg(r.worker_id ORDER BY r.event_id DESC))[1] AS worker_id,
       count(*)::int AS repeats,
       min(r.ts) AS first_ts,
       min(r.market_ts) AS first_market_ts
  FROM runs r
 GROUP BY r.kind, r.service, r.symbol, r.run;

GRANT SELECT ON monitor.price_watched, monitor.recent_event_groups
    TO sm_pricesync, sm_strategy, sm_execution, sm_readonly, sm_dashboard;
GRANT EXECUTE ON FUNCTION monitor.market_open() TO sm_pricesync, sm_strategy, sm_execution, sm_readonly, sm_dashboard;
