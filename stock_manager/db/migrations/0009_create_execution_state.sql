-- Execution's own bookkeeping: who reconciles (a lease), which broker notices it has applied,
-- and what the broker last said about each order.

-- One reconciler at a time: the holder renews expires_ts; anyone may take an expired lease.
CREATE TABLE trade.leader_leases (
    name         text PRIMARY KEY,
    holder       text NOT NULL,
    acquired_ts  timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_ts   timestamptz NOT NULL
);

-- Each relayed notice (market.broker_notices) is applied at most once; ORPHAN means its order was
-- not known yet, and it is applied when the order's broker number is linked.
CREATE TABLE trade.notice_log (
    notice_id   bigint PRIMARY KEY,
    status      text NOT NULL CHECK (status IN ('APPLIED', 'ORPHAN', 'DUPLICATE', 'SUPERSEDED', 'IGNORED')),
    order_id    bigint REFERENCES trade.orders,
    fill_id     bigint REFERENCES trade.fills,
    detail      text,
    applied_ts  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX notice_log_orphan_idx ON trade.notice_log (notice_id) WHERE status = 'ORPHAN';

-- What the broker last reported for the order, and since when our fills have been short of it.
ALTER TABLE trade.orders
    ADD COLUMN attempt_market_ts     timestamptz,
    ADD COLUMN broker_filled_qty     bigint NOT NULL DEFAULT 0 CHECK (broker_filled_qty >= 0),
    ADD COLUMN broker_filled_amount  numeric(20, 2) NOT NULL DEFAULT 0,
    ADD COLUMN broker_seen_ts        timestamptz,
    ADD COLUMN fills_missing_since   timestamptz,
    ADD COLUMN claimed_by            text;

-- Generic transition check: TG_ARGV[0] names the table of legal (from_status, to_status) pairs.
CREATE FUNCTION trade.check_status_transition() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_status text := CASE WHEN TG_OP = 'INSERT' THEN 'NONE' ELSE OLD.status END;
    legal boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM trade.%I WHERE from_status = $1 AND to_status = $2)', TG_ARGV[0])
       INTO legal USING old_status, NEW.status;
    IF NOT legal THEN
        RAISE EXCEPTION 'illegal % status transition % -> %', TG_TABLE_NAME, old_status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

GRANT INSERT, UPDATE, DELETE ON trade.leader_leases TO sm_execution;
GRANT INSERT, UPDATE ON trade.notice_log TO sm_execution;
