-- Strategy's cancel requests (0011) may also ask for a modify; and the broker orders that carry
-- out a cancel or modify (KIS gives each its own order number, linked by orgn_odno), written ahead
-- like any order.
ALTER TABLE trade.cancel_requests
    ADD COLUMN kind           text NOT NULL DEFAULT 'CANCEL' CHECK (kind IN ('CANCEL', 'MODIFY')),
    ADD COLUMN qty            bigint CHECK (qty > 0),
    ADD COLUMN new_price      numeric(14, 2) CHECK (new_price > 0),
    ADD COLUMN new_order_type text CHECK (new_order_type IN ('MKT', 'LMT')),
    ADD CONSTRAINT cancel_requests_modify_has_type CHECK (kind = 'CANCEL' OR new_order_type IS NOT NULL),
    ADD CONSTRAINT cancel_requests_modify_price CHECK (kind = 'CANCEL' OR (new_order_type = 'LMT') = (new_price IS NOT NULL));

-- The broker orders that cancel or modify one of ours (KIS gives each a new order number).
CREATE TABLE trade.amendment_transitions (
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO trade.amendment_transitions VALUES
    ('NONE', 'PENDING_SUBMIT'),
    ('PENDING_SUBMIT', 'ACCEPTED'), ('PENDING_SUBMIT', 'REJECTED'), ('PENDING_SUBMIT', 'IN_DOUBT'),
    ('IN_DOUBT', 'ACCEPTED'), ('IN_DOUBT', 'REJECTED'), ('IN_DOUBT', 'PENDING_SUBMIT'), ('IN_DOUBT', 'ERROR');

CREATE TABLE trade.order_amendments (
    amendment_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id         uuid NOT NULL UNIQUE REFERENCES trade.cancel_requests,
    order_id           bigint NOT NULL REFERENCES trade.orders,
    kind               text NOT NULL CHECK (kind IN ('CANCEL', 'MODIFY')),
    trade_date         date NOT NULL,
    orgn_order_no      text NOT NULL,
    broker_order_no    text CHECK (broker_order_no ~ '^[0-9]{10}$'),
    qty                bigint,
    price              numeric(14, 2),
    ord_dvsn           text,
    status             text NOT NULL,
    status_reason      text,
    attempt_market_ts  timestamptz,
    created_ts         timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_ts         timestamptz NOT NULL DEFAULT clock_timestamp(),
    raw                jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (trade_date, broker_order_no)
);
CREATE INDEX order_amendments_order_idx ON trade.order_amendments (order_id);
CREATE TRIGGER order_amendments_transition BEFORE INSERT OR UPDATE OF status ON trade.order_amendments
    FOR EACH ROW EXECUTE FUNCTION trade.check_status_transition('amendment_transitions');


GRANT INSERT, UPDATE ON trade.order_amendments TO sm_execution;
