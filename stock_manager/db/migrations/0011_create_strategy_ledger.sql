-- Strategy's ledger.  Positions are rebuilt from fills (position_state gains what that needs),
-- every closed round trip is kept (the daily summary and tomorrow's tuning read it), every intent
-- keeps the price and inputs it was decided on (slippage, which signals won), and Strategy can ask
-- Execution to cancel an order it no longer wants (a resting entry, a stuck liquidation order).

-- position_state is rebuilt per symbol whenever that symbol's fills change: fills_count and
-- last_fill_id say which fills it reflects (a fill committed late with a lower id still changes the
-- count), trip_first_fill_id names the open round trip, exit_stage how far take-profit has gone.
ALTER TABLE trade.position_state
    ADD COLUMN fills_count         integer NOT NULL DEFAULT 0 CHECK (fills_count >= 0),
    ADD COLUMN trip_first_fill_id  bigint,
    ADD COLUMN exit_stage          smallint NOT NULL DEFAULT 0 CHECK (exit_stage >= 0),
    ADD COLUMN entry_intent_id     uuid;

-- What each intent was decided on: the reference price (signal or exit-decision price) and the
-- rule inputs.  Written in the same transaction as the intent.
CREATE TABLE trade.intent_context (
    intent_id     uuid PRIMARY KEY REFERENCES trade.order_intents,
    symbol        text NOT NULL,
    worker_id     text,
    ref_price     numeric(14, 2) CHECK (ref_price > 0),
    candidate_id  bigint,
    context       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_ts    timestamptz NOT NULL DEFAULT clock_timestamp(),
    market_ts     timestamptz
);

-- One row per closed round trip (flat -> long -> flat), derived from fills; rebuilt idempotently.
CREATE TABLE trade.round_trips (
    trip_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol              text NOT NULL,
    first_fill_id       bigint NOT NULL,
    last_fill_id        bigint NOT NULL,
    trade_date          date NOT NULL,
    entry_ts            timestamptz NOT NULL,
    exit_ts             timestamptz NOT NULL,
    qty                 bigint NOT NULL CHECK (qty > 0),
    buy_amount          numeric(20, 2) NOT NULL,
    sell_amount         numeric(20, 2) NOT NULL,
    avg_entry_price     numeric(16, 4) NOT NULL,
    avg_exit_price      numeric(16, 4) NOT NULL,
    fees                numeric(20, 2) NOT NULL DEFAULT 0,
    taxes               numeric(20, 2) NOT NULL DEFAULT 0,
    pnl                 numeric(20, 2) NOT NULL,
    exit_reason         text,
    forced              boolean NOT NULL DEFAULT false,
    worker_id           text,
    entry_intent_id     uuid,
    strategy_version    text,
    params_version      text,
    buy_orders          integer NOT NULL DEFAULT 0,
    sell_orders         integer NOT NULL DEFAULT 0,
    partial_orders      integer NOT NULL DEFAULT 0,
    entry_slippage_pct  numeric(10, 4),
    exit_slippage_pct   numeric(10, 4),
    entry_context       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_ts          timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_ts          timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT round_trips_once UNIQUE (symbol, first_fill_id)
);
CREATE INDEX round_trips_date_idx ON trade.round_trips (trade_date);

-- Cancel requests: Strategy inserts, Execution carries them out and moves only the status columns.
-- DONE: the broker accepted the cancel (the order itself turns CANCELLED when confirmed);
-- FAILED: it could not be cancelled (already filled, already gone).
CREATE TABLE trade.cancel_request_statuses (
    status    text PRIMARY KEY,
    terminal  boolean NOT NULL
);
INSERT INTO trade.cancel_request_statuses (status, terminal) VALUES
    ('NEW', false), ('PROCESSING', false), ('DONE', true), ('FAILED', true);

CREATE TABLE trade.cancel_request_transitions (
    from_status  text NOT NULL,
    to_status    text NOT NULL REFERENCES trade.cancel_request_statuses,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO trade.cancel_request_transitions (from_status, to_status) VALUES
    ('NONE', 'NEW'),
    ('NEW', 'PROCESSING'), ('NEW', 'DONE'), ('NEW', 'FAILED'),
    ('PROCESSING', 'DONE'), ('PROCESSING', 'FAILED'), ('PROCESSING', 'NEW');

CREATE TABLE trade.cancel_requests (
    request_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_key    text NOT NULL UNIQUE CHECK (length(request_key) BETWEEN 1 AND 200),
    order_id       bigint NOT NULL REFERENCES trade.orders,
    intent_id      uuid NOT NULL,
    symbol         text NOT NULL,
    reason         text NOT NULL,
    requested_by   text,
    status         text NOT NULL DEFAULT 'NEW' REFERENCES trade.cancel_request_statuses,
    status_reason  text,
    created_ts     timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_ts     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX cancel_requests_one_open_per_order ON trade.cancel_requests (order_id)
    WHERE status IN ('NEW', 'PROCESSING');
CREATE INDEX cancel_requests_new_idx ON trade.cancel_requests (created_ts) WHERE status = 'NEW';

CREATE FUNCTION trade.check_cancel_request_transition() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_status text := CASE WHEN TG_OP = 'INSERT' THEN 'NONE' ELSE OLD.status END;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM trade.cancel_request_transitions t
                    WHERE t.from_status = old_status AND t.to_status = NEW.status) THEN
        RAISE EXCEPTION 'illegal cancel_requests status transition % -> %', old_status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER cancel_requests_transition BEFORE INSERT OR UPDATE OF status ON trade.cancel_requests
    FOR EACH ROW EXECUTE FUNCTION trade.check_cancel_request_transition();

-- Wakes Execution at once; its polling is the guarantee.
CREATE FUNCTION trade.notify_cancel_request() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('trade_cancels', NEW.request_id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER cancel_requests_notify AFTER INSERT ON trade.cancel_requests
    FOR EACH ROW EXECUTE FUNCTION trade.notify_cancel_request();

GRANT INSERT, UPDATE, DELETE ON trade.intent_context, trade.round_trips TO sm_strategy;
GRANT INSERT ON trade.cancel_requests TO sm_strategy;
GRANT UPDATE (status, status_reason, updated_ts) ON trade.cancel_requests TO sm_execution;
