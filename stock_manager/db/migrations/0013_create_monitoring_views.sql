-- monitor: what an operator asks of the tables, as views (docs/monitoring.md has example queries).
-- `stock-manager status`, the dashboard and its /metrics read only these views, so the three
-- always agree.  Every view is security_invoker: it shows a role nothing that role could not
-- already SELECT itself (sm_readonly reads everything but ops.broker_tokens).
--
-- The one writer here is the dashboard's alert loop, as the role sm_dashboard: it may write only
-- its alert bookkeeping (monitor.alert_log, monitor.alert_cursor) and, like every service, its own
-- rows of ops.heartbeats and ops.events (service 'dashboard').  The pages themselves read as
-- sm_readonly.

DO $$
BEGIN
    CREATE ROLE sm_dashboard LOGIN NOINHERIT;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;  -- roles are cluster-wide (see 0001)
END
$$;

CREATE SCHEMA monitor;
REVOKE ALL ON SCHEMA monitor FROM PUBLIC;
GRANT USAGE ON SCHEMA monitor TO sm_pricesync, sm_strategy, sm_execution, sm_readonly, sm_dashboard;

-- sm_dashboard reads what sm_readonly reads (the views are security_invoker).
GRANT USAGE ON SCHEMA market, trade, ops TO sm_dashboard;
GRANT SELECT ON ALL TABLES IN SCHEMA market, trade, ops TO sm_dashboard;
REVOKE SELECT ON ops.broker_tokens FROM sm_dashboard;
ALTER DEFAULT PRIVILEGES IN SCHEMA market, trade, ops GRANT SELECT ON TABLES TO sm_dashboard;
GRANT INSERT ON ops.events TO sm_dashboard;
GRANT INSERT, UPDATE, DELETE ON ops.heartbeats TO sm_dashboard;

-- --- time and money rules -------------------------------------------------------------------------

-- A heartbeat older than this means the process is gone or stuck (the services beat every 5 s).
CREATE FUNCTION monitor.stale_after() RETURNS interval LANGUAGE sql IMMUTABLE AS $$
    SELECT interval '20 seconds'
$$;

-- The market's time: what the running services say it is (the simulator's clock in sim mode, which
-- may be any day at any speed), else the wall clock.
CREATE FUNCTION monitor.market_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT max(h.market_ts)
           FROM ops.heartbeats h
          WHERE h.service IN ('pricesync', 'strategy', 'execution')
            AND h.status IN ('RUNNING', 'DEGRADED')
            AND h.beat_ts > clock_timestamp() - monitor.stale_after()),
        clock_timestamp())
$$;

-- "Today": the KST trade date of the market's time.
CREATE FUNCTION monitor.trade_date() RETURNS date LANGUAGE sql STABLE AS $$
    SELECT (monitor.market_now() AT TIME ZONE 'Asia/Seoul')::date
$$;

-- Mirrors stock_manager/shared/market_rules.sell_tax_rate (a test keeps them equal).
CREATE FUNCTION monitor.sell_tax_rate(market text, on_date date) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN market = 'ETF' THEN 0::numeric
                WHEN market = 'KONEX' THEN 0.0010
                WHEN on_date >= DATE '2026-01-01' THEN 0.0020
                ELSE 0.0015 END
$$;

-- KIS_COMMISSION_RATE lives in the services' environment; the database default matches it and an
-- operator who changes it can say so here: ALTER DATABASE stock_manager SET sm.commission_rate = '0.0001'.
CREATE FUNCTION monitor.commission_rate() RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('sm.commission_rate', true), '')::numeric, 0.00015)
$$;

-- --- services --------------------------------------------------------------------------------------

-- One row per process that ever heartbeated.
CREATE VIEW monitor.service_instances WITH (security_invoker = true) AS
SELECT h.service,
       h.instance_id,
       h.pid,
       h.host,
       h.status,
       h.started_ts,
       h.beat_ts,
       h.market_ts,
       extract(epoch FROM clock_timestamp() - h.beat_ts)::float8 AS beat_age_s,
       (h.status IN ('RUNNING', 'DEGRADED', 'STARTING') AND h.beat_ts > clock_timestamp() - monitor.stale_after())
           AS alive,
       CASE WHEN h.status = 'STOPPED' THEN 'stopped'
            WHEN h.beat_ts > clock_timestamp() - monitor.stale_after() THEN 'alive'
            ELSE 'stale' END AS state
  FROM ops.heartbeats h;

-- One row per service: alive if any instance is; down if none is and the newest did not stop
-- cleanly (crashed, killed or hung); stopped if it was stopped on purpose.
CREATE VIEW monitor.services WITH (security_invoker = true) AS
SELECT i.service,
       count(*)::int AS instances,
       count(*) FILTER (WHERE i.alive)::int AS alive_instances,
       newest.status AS newest_status,
       newest.pid AS newest_pid,
       newest.beat_ts AS newest_beat_ts,
       newest.market_ts,
       min(i.beat_age_s) AS beat_age_s,
       CASE WHEN bool_or(i.alive) THEN 'alive'
            WHEN newest.status = 'STOPPED' THEN 'stopped'
            ELSE 'down' END AS state
  FROM monitor.service_instances i
 CROSS JOIN LATERAL (
        SELECT n.status, n.pid, n.beat_ts, n.market_ts
          FROM ops.heartbeats n
         WHERE n.service = i.service
         ORDER BY n.beat_ts DESC
         LIMIT 1
       ) newest
 GROUP BY i.service, newest.status, newest.pid, newest.beat_ts, newest.market_ts;

CREATE VIEW monitor.trading_state WITH (security_invoker = true) AS
SELECT t.state, t.reason, t.changed_by, t.changed_ts,
       extract(epoch FROM clock_timestamp() - t.changed_ts)::float8 AS age_s,
       monitor.market_now() AS market_now,
       monitor.trade_date() AS trade_date
  FROM trade.trading_state t
 WHERE t.id = 1;

-- --- prices ----------------------------------------------------------------------------------------

-- Per symbol with a price: PriceSync's verdict on the source the price came from, trusted only
-- while a PriceSync is alive (a dead PriceSync leaves FRESH rows behind).  ts and received_ts are
-- PriceSync's clock (the market's, in sim mode); age_s is wall seconds since the row was written.
CREATE VIEW monitor.price_status WITH (security_invoker = true) AS
SELECT p.symbol,
       p.price,
       p.source,
       p.ts AS price_ts,
       p.received_ts,
       p.updated_ts,
       extract(epoch FROM clock_timestamp() - p.updated_ts)::float8 AS age_s,
       f.status AS verdict,
       f.reason AS stale_reason,
       f.lag_ms,
       coalesce(f.status = 'FRESH' AND ps.alive, false) AS fresh
  FROM market.prices_best p
  LEFT JOIN market.freshness f ON f.symbol = p.symbol AND f.source = p.source
 CROSS JOIN LATERAL (
        SELECT EXISTS (SELECT 1 FROM monitor.service_instances i WHERE i.service = 'pricesync' AND i.alive) AS alive
       ) ps;

CREATE VIEW monitor.price_freshness WITH (security_invoker = true) AS
SELECT count(*)::int AS symbols,
       count(*) FILTER (WHERE s.fresh)::int AS fresh,
       count(*) FILTER (WHERE NOT s.fresh)::int AS stale,
       count(*) FILTER (WHERE s.verdict IS NULL)::int AS no_verdict,
       max(s.updated_ts) AS newest_updated_ts,
       min(s.age_s) AS newest_age_s,
       max(s.age_s) AS oldest_age_s,
       (SELECT bool_or(i.alive) FROM monitor.service_instances i WHERE i.service = 'pricesync') AS pricesync_alive,
       (SELECT w.connected FROM market.feed_status w WHERE w.feed = 'ws') AS ws_connected,
       (SELECT w.notices_subscribed FROM market.feed_status w WHERE w.feed = 'ws') AS notices_subscribed
  FROM monitor.price_status s;

-- --- intents and orders ----------------------------------------------------------------------------

CREATE VIEW monitor.open_intents WITH (security_invoker = true) AS
SELECT i.intent_id, i.action_key, i.symbol, i.side, i.intent_type, i.qty, i.order_type, i.limit_price,
       i.status, i.status_reason, i.worker_id, i.claimed_by, i.attempts, i.created_ts,
       extract(epoch FROM clock_timestamp() - i.created_ts)::float8 AS age_s
  FROM trade.order_intents i
 WHERE i.status IN ('NEW', 'PROCESSING');

CREATE VIEW monitor.open_orders WITH (security_invoker = true) AS
SELECT o.order_id, o.intent_id, o.trade_date, o.broker_order_no, o.symbol, o.side, o.qty, o.filled_qty,
       o.cancelled_qty, o.order_type, o.limit_price, o.status, o.status_reason, o.submit_attempts,
       o.attempt_ts, o.submitted_ts, o.created_ts, o.updated_ts,
       extract(epoch FROM clock_timestamp() - o.created_ts)::float8 AS age_s
  FROM trade.orders o
 WHERE o.status IN ('PENDING_SUBMIT', 'IN_DOUBT', 'SUBMITTED', 'PARTIAL');

-- Intent -> order latency for orders whose intent was written in the last day (wall clock):
-- to the write-ahead (attempt_ts, the claim) and to the broker's acknowledgement (submitted_ts).
CREATE VIEW monitor.order_latency WITH (security_invoker = true) AS
SELECT o.order_id, o.symbol, o.side, o.status, i.created_ts AS intent_ts, o.attempt_ts, o.submitted_ts,
       (extract(epoch FROM o.attempt_ts - i.created_ts) * 1000)::float8 AS to_attempt_ms,
       (extract(epoch FROM o.submitted_ts - i.created_ts) * 1000)::float8 AS to_submit_ms
  FROM trade.orders o
  JOIN trade.order_intents i ON i.intent_id = o.intent_id
 WHERE i.created_ts > clock_timestamp() - interval '1 day';

CREATE VIEW monitor.order_latency_summary WITH (security_invoker = true) AS
SELECT w.name AS window_name,
       count(l.order_id)::int AS orders,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY l.to_attempt_ms) AS attempt_p50_ms,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY l.to_attempt_ms) AS attempt_p90_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY l.to_attempt_ms) AS attempt_p99_ms,
       max(l.to_attempt_ms) AS attempt_max_ms,
       count(l.to_submit_ms)::int AS submitted,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY l.to_submit_ms) AS submit_p50_ms,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY l.to_submit_ms) AS submit_p90_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY l.to_submit_ms) AS submit_p99_ms,
       max(l.to_submit_ms) AS submit_max_ms
  FROM (VALUES ('5m', interval '5 minutes'), ('1h', interval '1 hour'), ('24h', interval '1 day')) AS w(name, span)
  LEFT JOIN monitor.order_latency l ON l.intent_ts > clock_timestamp() - w.span
 GROUP BY w.name, w.span;

-- --- positions and PnL -----------------------------------------------------------------------------

-- Open positions at the best price.  unrealized_net takes off what selling now would cost
-- (commission and sell tax, each rounded down to the won as KIS does).
CREATE VIEW monitor.positions WITH (security_invoker = true) AS
SELECT p.symbol,
       s.name,
       s.market,
       p.qty,
       p.avg_price,
       round(p.avg_price * p.qty, 2) AS cost,
       b.price,
       b.ts AS price_ts,
       b.updated_ts AS price_updated_ts,
       extract(epoch FROM clock_timestamp() - b.updated_ts)::float8 AS price_age_s,
       coalesce(ps.fresh, false) AS price_fresh,
       round(b.price * p.qty, 2) AS market_value,
       round((b.price - p.avg_price) * p.qty, 2) AS unrealized_gross,
       floor(b.price * p.qty * monitor.commission_rate()) AS exit_fee_est,
       floor(b.price * p.qty * monitor.sell_tax_rate(s.market, monitor.trade_date())) AS exit_tax_est,
       round((b.price - p.avg_price) * p.qty, 2)
           - floor(b.price * p.qty * monitor.commission_rate())
           - floor(b.price * p.qty * monitor.sell_tax_rate(s.market, monitor.trade_date())) AS unrealized_net,
       round((b.price / p.avg_price - 1) * 100, 2) AS unrealized_pct,
       p.realized_pnl AS trip_realized,
       p.fees,
       p.taxes,
       p.entry_price,
       p.entry_ts,
       p.high_water_price,
       p.exit_stage,
       p.worker_id,
       p.updated_ts
  FROM trade.position_state p
  LEFT JOIN market.symbols s ON s.symbol = p.symbol
  LEFT JOIN market.prices_best b ON b.symbol = p.symbol
  LEFT JOIN monitor.price_status ps ON ps.symbol = p.symbol
 WHERE p.status = 'OPEN';

-- Today's fills (KST trade date of the market's time).
CREATE VIEW monitor.fills_today WITH (security_invoker = true) AS
SELECT f.fill_id, f.order_id, f.ts, f.symbol, f.side, f.qty, f.price, f.fee, f.tax, f.source,
       round(f.price * f.qty, 2) AS amount, i.intent_type, i.reason
  FROM trade.fills f
  JOIN trade.orders o ON o.order_id = f.order_id
  JOIN trade.order_intents i ON i.intent_id = o.intent_id
 WHERE f.ts >= (monitor.trade_date()::timestamp AT TIME ZONE 'Asia/Seoul')
   AND f.ts < ((monitor.trade_date() + 1)::timestamp AT TIME ZONE 'Asia/Seoul');

-- What each of today's fills realized, the way Strategy books it (stock_manager/services/strategy/rules/positions.py):
-- a buy realizes minus its fee and tax; a sell realizes (price - average cost) x qty minus its fee
-- and tax.  The average cost needs the fills since the symbol was last flat, so each symbol's walk
-- starts at the first fill of the oldest round trip that touches today.
CREATE VIEW monitor.fill_pnl_today WITH (security_invoker = true) AS
WITH RECURSIVE
day AS (
    SELECT (monitor.trade_date()::timestamp AT TIME ZONE 'Asia/Seoul') AS lo,
           ((monitor.trade_date() + 1)::timestamp AT TIME ZONE 'Asia/Seoul') AS hi,
           monitor.trade_date() AS d
),
starts AS (
    SELECT x.symbol, min(x.first_fill_id) AS first_fill_id
      FROM (SELECT f.symbol, f.fill_id FROM trade.fills f, day WHERE f.ts >= day.lo AND f.ts < day.hi
            UNION ALL
            SELECT r.symbol, r.first_fill_id FROM trade.round_trips r, day WHERE r.trade_date = day.d
            UNION ALL
            SELECT p.symbol, p.trip_first_fill_id FROM trade.position_state p
             WHERE p.status = 'OPEN' AND p.trip_first_fill_id IS NOT NULL) AS x(symbol, first_fill_id)
     GROUP BY x.symbol
),
seq AS (
    SELECT f.symbol, f.fill_id, f.ts, f.side, f.qty, f.price, f.fee, f.tax,
           row_number() OVER (PARTITION BY f.symbol ORDER BY f.fill_id) AS rn
      FROM trade.fills f
      JOIN starts s ON s.symbol = f.symbol AND f.fill_id >= s.first_fill_id
),
walk AS (
    SELECT DISTINCT s.symbol, 0::bigint AS rn, NULL::bigint AS fill_id, NULL::timestamptz AS ts, NULL::text AS side,
           0::bigint AS qty, NULL::numeric AS price, 0::numeric AS fee, 0::numeric AS tax,
           0::bigint AS held, 0::numeric AS cost, 0::numeric AS realized
      FROM seq s
    UNION ALL
    SELECT n.symbol, n.rn, n.fill_id, n.ts, n.side, n.qty, n.price::numeric, n.fee::numeric, n.tax::numeric,
           CASE WHEN n.side = 'BUY' THEN w.held + n.qty ELSE greatest(w.held - n.qty, 0) END,
           CASE WHEN n.side = 'BUY' THEN w.cost + n.price * n.qty
                WHEN w.held <= n.qty THEN 0
                ELSE w.cost - w.cost / w.held * n.qty END::numeric,
           CASE WHEN n.side = 'BUY' OR w.held <= 0 THEN -(n.fee + n.tax)
                ELSE (n.price - w.cost / w.held) * least(n.qty, w.held) - n.fee - n.tax END::numeric
      FROM walk w
      JOIN seq n ON n.symbol = w.symbol AND n.rn = w.rn + 1
)
SELECT w.fill_id, w.ts, w.symbol, w.side, w.qty, w.price, w.fee, w.tax, w.held AS held_after,
       round(w.realized, 2) AS realized,
       round(sum(w.realized) OVER (ORDER BY w.ts, w.fill_id), 2) AS cum_realized
  FROM walk w, day
 WHERE w.rn > 0 AND w.ts >= day.lo AND w.ts < day.hi;

-- Today in one row.  realized: closed round trips of today plus what the open trips realized so
-- far (partial exits, buy fees), as Strategy's risk check counts it; unrealized at best prices.
CREATE VIEW monitor.pnl_today WITH (security_invoker = true) AS
SELECT d.trade_date,
       coalesce(rt.realized, 0) AS realized_closed,
       coalesce(op.realized, 0) AS realized_open,
       coalesce(rt.realized, 0) + coalesce(op.realized, 0) AS realized,
       coalesce(op.unrealized_gross, 0) AS unrealized_gross,
       coalesce(op.unrealized_net, 0) AS unrealized_net,
       coalesce(rt.realized, 0) + coalesce(op.realized, 0) + coalesce(op.unrealized_net, 0) AS total,
       coalesce(rt.trips, 0) AS round_trips,
       coalesce(rt.wins, 0) AS wins,
       coalesce(rt.losses, 0) AS losses,
       coalesce(op.positions, 0) AS open_positions,
       coalesce(op.market_value, 0) AS market_value,
       coalesce(fl.fills, 0) AS fills,
       coalesce(fl.buy_amount, 0) AS buy_amount,
       coalesce(fl.sell_amount, 0) AS sell_amount,
       coalesce(fl.fees, 0) AS fees,
       coalesce(fl.taxes, 0) AS taxes,
       ds.realized_pnl AS summary_realized,
       ds.updated_ts AS summary_ts
  FROM (SELECT monitor.trade_date() AS trade_date) d
  LEFT JOIN LATERAL (
        SELECT sum(r.pnl) AS realized, count(*)::int AS trips,
               count(*) FILTER (WHERE r.pnl > 0)::int AS wins, count(*) FILTER (WHERE r.pnl <= 0)::int AS losses
          FROM trade.round_trips r WHERE r.trade_date = d.trade_date
       ) rt ON true
  LEFT JOIN LATERAL (
        SELECT sum(p.trip_realized) AS realized, sum(p.unrealized_gross) AS unrealized_gross,
               sum(p.unrealized_net) AS unrealized_net, count(*)::int AS positions,
               sum(p.market_value) AS market_value
          FROM monitor.positions p
       ) op ON true
  LEFT JOIN LATERAL (
        SELECT count(*)::int AS fills,
               sum(f.amount) FILTER (WHERE f.side = 'BUY') AS buy_amount,
               sum(f.amount) FILTER (WHERE f.side = 'SELL') AS sell_amount,
               sum(f.fee) AS fees, sum(f.tax) AS taxes
          FROM monitor.fills_today f
       ) fl ON true
  LEFT JOIN trade.daily_summaries ds ON ds.trade_date = d.trade_date;

-- --- events ----------------------------------------------------------------------------------------

CREATE VIEW monitor.reconciliation_events WITH (security_invoker = true) AS
SELECT e.event_id, e.ts, e.market_ts, e.service, e.level, e.kind, e.message, e.symbol, e.intent_id,
       (e.data ->> 'order_id')::bigint AS order_id,
       coalesce(e.data ->> 'correction', e.data ->> 'outcome') AS detail,
       e.data ->> 'broker_order_no' AS broker_order_no
  FROM ops.events e
 WHERE e.kind IN ('ReconcileCorrection', 'InDoubtResolved', 'ReconcileMismatch', 'UnknownBrokerOrder');

-- The newest 200 events, without their data (the message says what happened).
CREATE VIEW monitor.recent_events WITH (security_invoker = true) AS
SELECT e.event_id, e.ts, e.market_ts, e.service, e.level, e.kind, e.message, e.symbol, e.worker_id
  FROM ops.events e
 ORDER BY e.event_id DESC
 LIMIT 200;

-- --- alerts ----------------------------------------------------------------------------------------

-- Events worth waking someone for.  A halt is alerted from trade.trading_state (whoever set it),
-- so the CLI's TradingHalt event is not listed here.  throttle_key groups repeats: kind, rule or
-- outcome, and symbol -- but not the symbol for a risk rule that blocks every entry (Strategy's
-- GLOBAL_RULES), which would otherwise alert once per symbol tried.
CREATE VIEW monitor.alert_events WITH (security_invoker = true) AS
SELECT e.event_id, e.ts, e.service, e.level, e.kind, e.message, e.symbol,
       e.kind || ':' || coalesce(e.data ->> 'rule', e.data ->> 'correction', e.data ->> 'outcome', '') || ':'
           || CASE WHEN e.data ->> 'rule' IN ('trading_state', 'daily_loss_limit', 'capital_limit', 'max_positions')
                   THEN '*' ELSE coalesce(e.symbol, '') END AS throttle_key,
       CASE WHEN e.level IN ('ERROR', 'CRITICAL') OR e.kind = 'ReconcileMismatch' THEN 'critical'
            ELSE 'warning' END AS severity
  FROM ops.events e
 WHERE e.kind IN ('RiskViolation', 'ReconcileCorrection', 'InDoubtResolved', 'ReconcileMismatch',
                  'UnknownBrokerOrder', 'LiquidationIncomplete', 'RecoveryFailed')
    OR e.level = 'CRITICAL';

-- What is wrong right now.  condition_key names one episode: it changes when the condition ends
-- and starts again, so each episode is alerted once.
CREATE VIEW monitor.alert_conditions WITH (security_invoker = true) AS
SELECT 'trading_state:' || t.state || ':' || extract(epoch FROM t.changed_ts)::text AS condition_key,
       'TradingHalted' AS kind,
       'critical' AS severity,
       'TradingHalted:' || t.state AS throttle_key,
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
 WHERE NOT p.price_fresh;

-- What the alert loop sent, one row per alert: the UNIQUE alert_key is what makes each alert go
-- out once (event:<event_id>, or a condition_key and <condition_key>:resolved).
CREATE TABLE monitor.alert_transitions (
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO monitor.alert_transitions (from_status, to_status) VALUES
    ('NONE', 'PENDING'), ('NONE', 'SUPPRESSED'),
    ('PENDING', 'SENT'), ('PENDING', 'SUPPRESSED'), ('PENDING', 'FAILED');

CREATE TABLE monitor.alert_log (
    alert_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_key      text NOT NULL UNIQUE,
    source         text NOT NULL CHECK (source IN ('event', 'condition', 'resolved')),
    kind           text NOT NULL,
    severity       text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    throttle_key   text NOT NULL,
    symbol         text,
    message        text NOT NULL,
    event_id       bigint,
    status         text NOT NULL DEFAULT 'PENDING',
    attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error     text,
    created_ts     timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_ts        timestamptz,
    resolved_ts    timestamptz,
    updated_ts     timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((status = 'SENT') = (sent_ts IS NOT NULL))
);
CREATE INDEX alert_log_pending_idx ON monitor.alert_log (alert_id) WHERE status = 'PENDING';
CREATE INDEX alert_log_throttle_idx ON monitor.alert_log (throttle_key, sent_ts DESC) WHERE status = 'SENT';
CREATE INDEX alert_log_open_conditions_idx ON monitor.alert_log (alert_id)
    WHERE source = 'condition' AND resolved_ts IS NULL;

CREATE FUNCTION monitor.check_alert_transition() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_status text := CASE WHEN TG_OP = 'INSERT' THEN 'NONE' ELSE OLD.status END;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM monitor.alert_transitions t
                    WHERE t.from_status = old_status AND t.to_status = NEW.status) THEN
        RAISE EXCEPTION 'illegal alert_log status transition % -> %', old_status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER alert_log_transition BEFORE INSERT OR UPDATE OF status ON monitor.alert_log
    FOR EACH ROW EXECUTE FUNCTION monitor.check_alert_transition();

-- How far through ops.events the alert loop has read.
CREATE TABLE monitor.alert_cursor (
    name           text PRIMARY KEY,
    last_event_id  bigint NOT NULL,
    updated_ts     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- --- grants ----------------------------------------------------------------------------------------

GRANT SELECT ON ALL TABLES IN SCHEMA monitor TO sm_pricesync, sm_strategy, sm_execution, sm_readonly, sm_dashboard;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA monitor TO sm_pricesync, sm_strategy, sm_execution, sm_readonly, sm_dashboard;
REVOKE EXECUTE ON FUNCTION monitor.check_alert_transition() FROM PUBLIC;
GRANT INSERT, UPDATE ON monitor.alert_log, monitor.alert_cursor TO sm_dashboard;
