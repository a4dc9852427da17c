-- Positions the broker agrees with (seed 003 §5, seed 002 "수동 주문은 별도 마킹").
--
-- 1. Orders placed at the broker outside this system (HTS, MTS) are recorded as orders of origin
--    MANUAL, with no intent.  Their fills are recorded like any other, so positions (rebuilt from
--    fills) count them, and their broker numbers are linked, so in-doubt resolution never adopts one.
-- 2. Execution compares the broker's holdings (inquire-balance) with the net of our fills, at start
--    and through the day, and writes each comparison here.  Strategy reads the newest check: DRIFT
--    (a difference that outlived a reconcile pass) moves trading to HALTED.
-- 3. Which event kinds are alerts is a table now, so a later migration adds a kind with an INSERT
--    instead of redefining the view.

ALTER TABLE trade.orders
    ALTER COLUMN intent_id DROP NOT NULL,
    ADD COLUMN origin text NOT NULL DEFAULT 'INTENT' CHECK (origin IN ('INTENT', 'MANUAL')),
    ADD CONSTRAINT orders_origin_has_intent CHECK ((origin = 'INTENT') = (intent_id IS NOT NULL));

CREATE TABLE trade.position_checks (
    check_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checked_ts  timestamptz NOT NULL DEFAULT clock_timestamp(),
    market_ts   timestamptz,
    verdict     text NOT NULL CHECK (verdict IN ('AGREE', 'MISMATCH', 'DRIFT')),
    symbols     integer NOT NULL CHECK (symbols >= 0),
    -- [{"symbol", "broker_qty", "our_qty"}] for every symbol where the two differ
    diffs       jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX position_checks_ts_idx ON trade.position_checks (checked_ts DESC);
GRANT INSERT ON trade.position_checks TO sm_execution;

CREATE TABLE ops.alert_kinds (
    kind  text PRIMARY KEY
);
INSERT INTO ops.alert_kinds (kind) VALUES
    ('RiskViolation'), ('ReconcileCorrection'), ('InDoubtResolved'), ('ReconcileMismatch'),
    ('UnknownBrokerOrder'), ('LiquidationIncomplete'), ('RecoveryFailed'),
    ('ManualOrder'), ('PositionMismatch'), ('PositionDrift');

CREATE OR REPLACE VIEW monitor.alert_events WITH (security_invoker = true) AS
SELECT e.event_id, e.ts, e.service, e.level, e.kind, e.message, e.symbol,
       e.kind || ':' || coalesce(e.data ->> 'rule', e.data ->> 'correction', e.data ->> 'outcome', '') || ':'
           || CASE WHEN e.data ->> 'rule' IN ('trading_state', 'daily_loss_limit', 'capital_limit', 'max_positions')
                   THEN '*' ELSE coalesce(e.symbol, '') END AS throttle_key,
       CASE WHEN e.level IN ('ERROR', 'CRITICAL') OR e.kind = 'ReconcileMismatch' THEN 'critical'
            ELSE 'warning' END AS severity
  FROM ops.events e
 WHERE e.kind IN (SELECT k.kind FROM ops.alert_kinds k)
    OR e.level = 'CRITICAL';
