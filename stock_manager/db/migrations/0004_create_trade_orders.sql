-- trade: what Strategy wants (order_intents) and what the broker did (orders, fills).
-- Status values and their legal transitions are rows here, mirrored by stock_manager/shared/trade_states.py;
-- a trigger rejects any other transition, whoever attempts it.

CREATE TABLE trade.intent_statuses (
    status    text PRIMARY KEY,
    terminal  boolean NOT NULL
);
INSERT INTO trade.intent_statuses (status, terminal) VALUES
    ('NEW', false), ('PROCESSING', false),
    ('SUBMITTED', true), ('DUPLICATE', true), ('REJECTED', true), ('FAILED', true);

CREATE TABLE trade.intent_transitions (
    from_status  text NOT NULL,   -- 'NONE' is the insert
    to_status    text NOT NULL REFERENCES trade.intent_statuses,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO trade.intent_transitions (from_status, to_status) VALUES
    ('NONE', 'NEW'),
    ('NEW', 'PROCESSING'), ('NEW', 'REJECTED'), ('NEW', 'DUPLICATE'),
    ('PROCESSING', 'SUBMITTED'), ('PROCESSING', 'REJECTED'), ('PROCESSING', 'FAILED'),
    ('PROCESSING', 'DUPLICATE'), ('PROCESSING', 'NEW');

CREATE TABLE trade.order_statuses (
    status    text PRIMARY KEY,
    terminal  boolean NOT NULL
);
INSERT INTO trade.order_statuses (status, terminal) VALUES
    ('PENDING_SUBMIT', false), ('IN_DOUBT', false), ('SUBMITTED', false), ('PARTIAL', false),
    ('FILLED', true), ('CANCELLED', true), ('REJECTED', true), ('ERROR', true);

CREATE TABLE trade.order_transitions (
    from_status  text NOT NULL,
    to_status    text NOT NULL REFERENCES trade.order_statuses,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO trade.order_transitions (from_status, to_status) VALUES
    ('NONE', 'PENDING_SUBMIT'),
    ('PENDING_SUBMIT', 'SUBMITTED'), ('PENDING_SUBMIT', 'PARTIAL'), ('PENDING_SUBMIT', 'FILLED'),
    ('PENDING_SUBMIT', 'REJECTED'), ('PENDING_SUBMIT', 'IN_DOUBT'), ('PENDING_SUBMIT', 'CANCELLED'),
    ('PENDING_SUBMIT', 'ERROR'),
    ('IN_DOUBT', 'PENDING_SUBMIT'), ('IN_DOUBT', 'SUBMITTED'), ('IN_DOUBT', 'PARTIAL'),
    ('IN_DOUBT', 'FILLED'), ('IN_DOUBT', 'CANCELLED'), ('IN_DOUBT', 'REJECTED'), ('IN_DOUBT', 'ERROR'),
    ('SUBMITTED', 'PARTIAL'), ('SUBMITTED', 'FILLED'), ('SUBMITTED', 'CANCELLED'), ('SUBMITTED', 'REJECTED'),
    ('PARTIAL', 'FILLED'), ('PARTIAL', 'CANCELLED');

CREATE FUNCTION trade.check_transition() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_status text := CASE WHEN TG_OP = 'INSERT' THEN 'NONE' ELSE OLD.status END;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM trade.intent_transitions t
         WHERE TG_TABLE_NAME = 'order_intents' AND t.from_status = old_status AND t.to_status = NEW.status
        UNION ALL
        SELECT 1 FROM trade.order_transitions t
         WHERE TG_TABLE_NAME = 'orders' AND t.from_status = old_status AND t.to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'illegal % status transition % -> %', TG_TABLE_NAME, old_status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TABLE trade.order_intents (
    intent_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    action_key       text NOT NULL UNIQUE CHECK (length(action_key) BETWEEN 1 AND 200),
    symbol           text NOT NULL CHECK (symbol ~ '^[0-9A-Z][0-9A-Z]{5,6}$'),
    side             text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    intent_type      text NOT NULL CHECK (intent_type IN ('ENTRY', 'EXIT_PARTIAL', 'EXIT_FULL')),
    qty              bigint NOT NULL CHECK (qty > 0),
    order_type       text NOT NULL CHECK (order_type IN ('MKT', 'LMT')),
    limit_price      numeric(14, 2) CHECK (limit_price > 0),
    status           text NOT NULL DEFAULT 'NEW' REFERENCES trade.intent_statuses,
    status_reason    text,
    worker_id        text,
    reason           text,
    strategy_version text,
    params_version   text,
    market_ts        timestamptz,
    claimed_by       text,
    claimed_ts       timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    created_ts       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_ts       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT intent_side_matches_type CHECK ((intent_type = 'ENTRY') = (side = 'BUY')),
    CONSTRAINT intent_limit_price_for_lmt CHECK ((order_type = 'LMT') = (limit_price IS NOT NULL))
);
CREATE INDEX order_intents_new_idx ON trade.order_intents (created_ts) WHERE status = 'NEW';
CREATE INDEX order_intents_processing_idx ON trade.order_intents (claimed_ts) WHERE status = 'PROCESSING';
CREATE INDEX order_intents_symbol_idx ON trade.order_intents (symbol, created_ts DESC);
CREATE TRIGGER order_intents_transition BEFORE INSERT OR UPDATE OF status ON trade.order_intents
    FOR EACH ROW EXECUTE FUNCTION trade.check_transition();

-- Wakes Execution at once; its polling is the guarantee, so a lost NOTIFY costs only latency.
CREATE FUNCTION trade.notify_new_intent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('trade_intents', NEW.intent_id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER order_intents_notify AFTER INSERT ON trade.order_intents
    FOR EACH ROW EXECUTE FUNCTION trade.notify_new_intent();

-- One row per broker order.  The row is written (PENDING_SUBMIT) and committed before the HTTP
-- call, so a crash at any instant leaves a trace to resolve against the broker's order list.
CREATE TABLE trade.orders (
    order_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    intent_id        uuid NOT NULL UNIQUE REFERENCES trade.order_intents,
    trade_date       date NOT NULL,
    broker_order_no  text CHECK (broker_order_no ~ '^[0-9]{10}$'),
    broker_org_no    text,
    symbol           text NOT NULL,
    side             text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    qty              bigint NOT NULL CHECK (qty > 0),
    order_type       text NOT NULL CHECK (order_type IN ('MKT', 'LMT')),
    ord_dvsn         text NOT NULL CHECK (ord_dvsn ~ '^[0-9]{2}$'),
    limit_price      numeric(14, 2),
    status           text NOT NULL REFERENCES trade.order_statuses,
    status_reason    text,
    filled_qty       bigint NOT NULL DEFAULT 0,
    filled_amount    numeric(20, 2) NOT NULL DEFAULT 0,
    cancelled_qty    bigint NOT NULL DEFAULT 0,
    submit_attempts  integer NOT NULL DEFAULT 0,
    attempt_ts       timestamptz,
    submitted_ts     timestamptz,
    created_ts       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_ts       timestamptz NOT NULL DEFAULT clock_timestamp(),
    raw              jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT orders_broker_no_per_day UNIQUE (trade_date, broker_order_no),
    CONSTRAINT orders_filled_within_qty CHECK (filled_qty >= 0 AND filled_qty + cancelled_qty <= qty),
    CONSTRAINT orders_cancelled_nonneg CHECK (cancelled_qty >= 0)
);
CREATE INDEX orders_open_idx ON trade.orders (status, updated_ts)
    WHERE status IN ('PENDING_SUBMIT', 'IN_DOUBT', 'SUBMITTED', 'PARTIAL');
CREATE INDEX orders_symbol_idx ON trade.orders (symbol, created_ts DESC);
CREATE TRIGGER orders_transition BEFORE INSERT OR UPDATE OF status ON trade.orders
    FOR EACH ROW EXECUTE FUNCTION trade.check_transition();

-- Executions, append-only.  exec_key de-duplicates the same execution reported by the notice
-- stream and by the broker's order list, however often and in whatever order they come.
CREATE TABLE trade.fills (
    fill_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     bigint NOT NULL REFERENCES trade.orders,
    exec_key     text NOT NULL,
    symbol       text NOT NULL,
    side         text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    qty          bigint NOT NULL CHECK (qty > 0),
    price        numeric(14, 2) NOT NULL CHECK (price > 0),
    fee          numeric(14, 2) NOT NULL DEFAULT 0 CHECK (fee >= 0),
    tax          numeric(14, 2) NOT NULL DEFAULT 0 CHECK (tax >= 0),
    ts           timestamptz NOT NULL,
    source       text NOT NULL CHECK (source IN ('NOTICE', 'RECONCILE')),
    created_ts   timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT fills_exec_once UNIQUE (order_id, exec_key)
);
CREATE INDEX fills_order_ts_idx ON trade.fills (order_id, ts DESC);
CREATE INDEX fills_ts_idx ON trade.fills (ts DESC);
CREATE INDEX fills_symbol_ts_idx ON trade.fills (symbol, ts DESC);
CREATE TRIGGER fills_append_only BEFORE UPDATE OR DELETE ON trade.fills
    FOR EACH ROW EXECUTE FUNCTION ops.reject_change();
