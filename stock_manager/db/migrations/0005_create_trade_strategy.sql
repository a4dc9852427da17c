-- trade: Strategy's own state.  Workers, their symbol locks, scan candidates, positions, re-entry
-- candidates, daily summaries, parameters and the trading state every service obeys.

CREATE TABLE trade.worker_statuses (
    status  text PRIMARY KEY
);
INSERT INTO trade.worker_statuses (status) VALUES ('IDLE'), ('SCAN'), ('HOLD'), ('EXIT');

CREATE TABLE trade.worker_transitions (
    from_status  text NOT NULL,
    to_status    text NOT NULL REFERENCES trade.worker_statuses,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO trade.worker_transitions (from_status, to_status) VALUES
    ('NONE', 'IDLE'),
    ('IDLE', 'SCAN'), ('IDLE', 'EXIT'),
    ('SCAN', 'HOLD'), ('SCAN', 'EXIT'), ('SCAN', 'IDLE'),
    ('HOLD', 'SCAN'), ('HOLD', 'EXIT');

CREATE TABLE trade.workers (
    worker_id       text PRIMARY KEY,
    instance_id     text NOT NULL,
    pid             integer NOT NULL,
    host            text NOT NULL,
    status          text NOT NULL REFERENCES trade.worker_statuses,
    current_symbol  text,
    started_ts      timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_ts    timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_ts      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (status <> 'HOLD' OR current_symbol IS NOT NULL)
);
CREATE INDEX workers_heartbeat_idx ON trade.workers (heartbeat_ts) WHERE status <> 'EXIT';

CREATE FUNCTION trade.check_worker_transition() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_status text := CASE WHEN TG_OP = 'INSERT' THEN 'NONE' ELSE OLD.status END;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM trade.worker_transitions t
                    WHERE t.from_status = old_status AND t.to_status = NEW.status) THEN
        RAISE EXCEPTION 'illegal worker status transition % -> %', old_status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER workers_transition BEFORE INSERT OR UPDATE OF status ON trade.workers
    FOR EACH ROW EXECUTE FUNCTION trade.check_worker_transition();

-- Every worker transition, as history.
CREATE TABLE trade.worker_history (
    history_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    worker_id    text NOT NULL,
    from_status  text,
    to_status    text NOT NULL,
    symbol       text,
    reason       text,
    ts           timestamptz NOT NULL DEFAULT clock_timestamp(),
    market_ts    timestamptz
);
CREATE INDEX worker_history_worker_idx ON trade.worker_history (worker_id, ts);

-- One row per locked symbol: the primary key makes two holders impossible.  A lock whose
-- expires_ts has passed may be taken over atomically (INSERT ... ON CONFLICT ... WHERE expired).
CREATE TABLE trade.symbol_locks (
    symbol        text PRIMARY KEY,
    worker_id     text NOT NULL,
    locked_ts     timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_ts  timestamptz NOT NULL DEFAULT clock_timestamp(),
    ttl_s         integer NOT NULL CHECK (ttl_s > 0),
    expires_ts    timestamptz NOT NULL
);
CREATE INDEX symbol_locks_worker_idx ON trade.symbol_locks (worker_id);
CREATE INDEX symbol_locks_expires_idx ON trade.symbol_locks (expires_ts);

CREATE TABLE trade.candidates (
    candidate_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scan_id        uuid NOT NULL,
    symbol         text NOT NULL,
    worker_id      text,
    signal         boolean NOT NULL,
    score          numeric,
    price          numeric(14, 2),
    inputs         jsonb NOT NULL DEFAULT '{}'::jsonb,
    filters        jsonb NOT NULL DEFAULT '{}'::jsonb,
    params_version text,
    scanned_ts     timestamptz NOT NULL DEFAULT clock_timestamp(),
    market_ts      timestamptz
);
CREATE INDEX candidates_scan_idx ON trade.candidates (scan_id);
CREATE INDEX candidates_signal_idx ON trade.candidates (scanned_ts DESC) WHERE signal;
CREATE INDEX candidates_symbol_idx ON trade.candidates (symbol, scanned_ts DESC);

-- Positions as Strategy derives them from fills.
CREATE TABLE trade.position_state (
    symbol            text PRIMARY KEY,
    qty               bigint NOT NULL DEFAULT 0 CHECK (qty >= 0),
    avg_price         numeric(16, 4),
    realized_pnl      numeric(20, 2) NOT NULL DEFAULT 0,
    fees              numeric(20, 2) NOT NULL DEFAULT 0,
    taxes             numeric(20, 2) NOT NULL DEFAULT 0,
    high_water_price  numeric(14, 2),
    entry_price       numeric(14, 2),
    entry_ts          timestamptz,
    worker_id         text,
    strategy_version  text,
    params_version    text,
    last_fill_id      bigint,
    status            text NOT NULL DEFAULT 'FLAT' CHECK (status IN ('OPEN', 'FLAT')),
    updated_ts        timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((qty = 0) = (status = 'FLAT')),
    CHECK (qty = 0 OR avg_price > 0)
);

CREATE TABLE trade.reentry_candidates (
    reentry_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol          text NOT NULL,
    exit_reason     text NOT NULL,
    exit_price      numeric(14, 2),
    exited_ts       timestamptz NOT NULL,
    cooldown_until  timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'WAITING'
                    CHECK (status IN ('WAITING', 'ARMED', 'USED', 'EXPIRED')),
    created_ts      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_ts      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX reentry_open_idx ON trade.reentry_candidates (symbol) WHERE status IN ('WAITING', 'ARMED');

CREATE TABLE trade.daily_summaries (
    trade_date    date PRIMARY KEY,
    realized_pnl  numeric(20, 2) NOT NULL DEFAULT 0,
    trades_count  integer NOT NULL DEFAULT 0 CHECK (trades_count >= 0),
    wins          integer NOT NULL DEFAULT 0 CHECK (wins >= 0),
    losses        integer NOT NULL DEFAULT 0 CHECK (losses >= 0),
    win_rate      numeric(6, 4),
    avg_pnl       numeric(20, 2),
    max_loss      numeric(20, 2),
    fees          numeric(20, 2) NOT NULL DEFAULT 0,
    taxes         numeric(20, 2) NOT NULL DEFAULT 0,
    notes         jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_ts    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (wins + losses <= trades_count)
);

-- Strategy parameters, versioned by the date from which they apply.
CREATE TABLE trade.strategy_params (
    params_version    text PRIMARY KEY,
    effective_date    date NOT NULL,
    strategy_version  text NOT NULL,
    params            jsonb NOT NULL,
    note              text,
    created_ts        timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (effective_date, strategy_version)
);

-- The one trading state every service obeys.  HALTED blocks entries everywhere at once.
CREATE TABLE trade.trading_state (
    id          smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    state       text NOT NULL CHECK (state IN ('ACTIVE', 'REDUCING', 'HALTED')),
    reason      text,
    changed_by  text NOT NULL,
    changed_ts  timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO trade.trading_state (id, state, reason, changed_by) VALUES (1, 'ACTIVE', 'initial', 'migrate');

CREATE FUNCTION trade.notify_trading_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('trading_state', NEW.state);
    RETURN NULL;
END
$$;
CREATE TRIGGER trading_state_notify AFTER INSERT OR UPDATE ON trade.trading_state
    FOR EACH ROW EXECUTE FUNCTION trade.notify_trading_state();
