-- One transition check for every status table (issue #13 §5).
--
-- Migrations 0004, 0005, 0011 and 0013 each carried their own copy of the same trigger function;
-- 0009 added a generic one that takes its transitions table as the trigger's argument.  Here the
-- generic one learns to look in the table's own schema (monitor.alert_log has its transitions in
-- monitor), every status trigger is moved onto it, and the copies are dropped.  The tables of
-- legal transitions themselves stay as they are: stock_manager/shared/trade_states.py mirrors
-- them and a test checks that the two agree.

CREATE OR REPLACE FUNCTION trade.check_status_transition() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_status text := CASE WHEN TG_OP = 'INSERT' THEN 'NONE' ELSE OLD.status END;
    legal boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE from_status = $1 AND to_status = $2)',
                   TG_TABLE_SCHEMA, TG_ARGV[0])
       INTO legal USING old_status, NEW.status;
    IF NOT legal THEN
        RAISE EXCEPTION 'illegal % status transition % -> %', TG_TABLE_NAME, old_status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER order_intents_transition ON trade.order_intents;
CREATE TRIGGER order_intents_transition BEFORE INSERT OR UPDATE OF status ON trade.order_intents
    FOR EACH ROW EXECUTE FUNCTION trade.check_status_transition('intent_transitions');

DROP TRIGGER orders_transition ON trade.orders;
CREATE TRIGGER orders_transition BEFORE INSERT OR UPDATE OF status ON trade.orders
    FOR EACH ROW EXECUTE FUNCTION trade.check_status_transition('order_transitions');

DROP TRIGGER workers_transition ON trade.workers;
CREATE TRIGGER workers_transition BEFORE INSERT OR UPDATE OF status ON trade.workers
    FOR EACH ROW EXECUTE FUNCTION trade.check_status_transition('worker_transitions');

DROP TRIGGER cancel_requests_transition ON trade.cancel_requests;
CREATE TRIGGER cancel_requests_transition BEFORE INSERT OR UPDATE OF status ON trade.cancel_requests
    FOR EACH ROW EXECUTE FUNCTION trade.check_status_transition('cancel_request_transitions');

DROP TRIGGER alert_log_transition ON monitor.alert_log;
CREATE TRIGGER alert_log_transition BEFORE INSERT OR UPDATE OF status ON monitor.alert_log
    FOR EACH ROW EXECUTE FUNCTION trade.check_status_transition('alert_transitions');

DROP FUNCTION trade.check_transition();
DROP FUNCTION trade.check_worker_transition();
DROP FUNCTION trade.check_cancel_request_transition();
DROP FUNCTION monitor.check_alert_transition();

-- Which order and intent statuses are open is the statuses tables' terminal flag (the rows
-- trade_states.py mirrors), not a list repeated in each view.
CREATE OR REPLACE VIEW monitor.open_intents WITH (security_invoker = true) AS
SELECT i.intent_id, i.action_key, i.symbol, i.side, i.intent_type, i.qty, i.order_type, i.limit_price,
       i.status, i.status_reason, i.worker_id, i.claimed_by, i.attempts, i.created_ts,
       extract(epoch FROM clock_timestamp() - i.created_ts)::float8 AS age_s
  FROM trade.order_intents i
 WHERE i.status IN (SELECT s.status FROM trade.intent_statuses s WHERE NOT s.terminal);

CREATE OR REPLACE VIEW monitor.open_orders WITH (security_invoker = true) AS
SELECT o.order_id, o.intent_id, o.trade_date, o.broker_order_no, o.symbol, o.side, o.qty, o.filled_qty,
       o.cancelled_qty, o.order_type, o.limit_price, o.status, o.status_reason, o.submit_attempts,
       o.attempt_ts, o.submitted_ts, o.created_ts, o.updated_ts,
       extract(epoch FROM clock_timestamp() - o.created_ts)::float8 AS age_s
  FROM trade.orders o
 WHERE o.status IN (SELECT s.status FROM trade.order_statuses s WHERE NOT s.terminal);

-- The tick partition lock takes its key from the registry of advisory locks
-- (stock_manager/shared/locks.py, TICK_PARTITION; a test reads this function's body for it).
CREATE OR REPLACE FUNCTION market.ensure_tick_partition(day date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, market AS $$
DECLARE
    part text := format('ticks_%s', to_char(day, 'YYYYMMDD'));
    lo timestamptz := (day::timestamp AT TIME ZONE 'Asia/Seoul');
    hi timestamptz := ((day + 1)::timestamp AT TIME ZONE 'Asia/Seoul');
BEGIN
    IF to_regclass(format('market.%I', part)) IS NULL THEN
        PERFORM pg_advisory_xact_lock(7365301, 5);
        IF to_regclass(format('market.%I', part)) IS NULL THEN
            IF EXISTS (SELECT 1 FROM market.ticks_default WHERE ts >= lo AND ts < hi) THEN
                -- rows already in the default partition for this day: leave them there
                RETURN 'ticks_default';
            END IF;
            EXECUTE format('CREATE TABLE market.%I PARTITION OF market.ticks FOR VALUES FROM (%L) TO (%L)',
                           part, lo, hi);
        END IF;
    END IF;
    RETURN part;
END
$$;
