-- One order state machine and a fenced reconciler (issue #13 §1, §2).
--
-- 1. Every status change of an order or an amendment is one compare-and-set statement
--    (stock_manager/services/execution/sql/orders.sql, apply_order_event / apply_amendment_event)
--    that also writes a row here: what happened, from which status to which, by whom, under which
--    lease epoch.  Append-only, like fills.
-- 2. The reconciler's lease carries an epoch, raised every time the lease changes hands (or is
--    taken again after it lapsed).  Every write the reconciler makes calls trade.lease_check with
--    the epoch it holds, in the same statement: once the lease has moved on, the statement raises
--    (SQLSTATE SMF01) and writes nothing.
-- 3. The legal transitions become exactly the pairs the Python tables produce
--    (stock_manager/shared/trade_states.py, ORDER_TABLE and AMENDMENT_TABLE): an order reaches a
--    fill or a cancel only once the broker has given it a number, and a cancel that provably never
--    left ends ERROR in one step; nothing ever used the pairs taken out.

CREATE TABLE trade.order_events (
    event_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id         bigint NOT NULL REFERENCES trade.orders,
    amendment_id     bigint REFERENCES trade.order_amendments,
    event            text NOT NULL,
    from_status      text NOT NULL,
    to_status        text NOT NULL,
    attempt          integer,
    reason           text,
    broker_order_no  text,
    epoch            bigint,          -- the reconciler's lease epoch; NULL for a sender's own outcome
    actor            text NOT NULL,   -- the Execution incarnation (instance#pid) that wrote it
    market_ts        timestamptz,
    ts               timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX order_events_order_idx ON trade.order_events (order_id, event_id);
CREATE INDEX order_events_amendment_idx ON trade.order_events (amendment_id) WHERE amendment_id IS NOT NULL;
CREATE TRIGGER order_events_append_only BEFORE UPDATE OR DELETE ON trade.order_events
    FOR EACH ROW EXECUTE FUNCTION ops.reject_change();
GRANT INSERT ON trade.order_events TO sm_execution;

ALTER TABLE trade.leader_leases ADD COLUMN epoch bigint NOT NULL DEFAULT 1;

CREATE FUNCTION trade.lease_check(p_lease text, p_holder text, p_epoch bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_epoch IS NULL THEN
        RETURN true;  -- not a reconciler's write
    END IF;
    IF NOT EXISTS (SELECT 1 FROM trade.leader_leases l
                    WHERE l.name = p_lease AND l.holder = p_holder AND l.epoch = p_epoch
                      AND l.expires_ts > clock_timestamp()) THEN
        RAISE EXCEPTION 'lease % epoch % is no longer held by %', p_lease, p_epoch, p_holder
            USING ERRCODE = 'SMF01';
    END IF;
    RETURN true;
END
$$;

DELETE FROM trade.order_transitions
 WHERE (from_status, to_status) IN (('PENDING_SUBMIT', 'PARTIAL'), ('PENDING_SUBMIT', 'FILLED'),
                                    ('PENDING_SUBMIT', 'CANCELLED'), ('IN_DOUBT', 'PARTIAL'),
                                    ('IN_DOUBT', 'FILLED'), ('IN_DOUBT', 'CANCELLED'));

INSERT INTO trade.amendment_transitions (from_status, to_status) VALUES ('PENDING_SUBMIT', 'ERROR');
DELETE FROM trade.amendment_transitions WHERE (from_status, to_status) = ('IN_DOUBT', 'PENDING_SUBMIT');
