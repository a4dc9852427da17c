-- ops: what every service writes about itself.  Each service may write only its own rows, which
-- row-level security enforces through the db_role column (the connecting role, never supplied).

CREATE TABLE ops.events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts          timestamptz NOT NULL DEFAULT clock_timestamp(),
    market_ts   timestamptz,
    service     text NOT NULL CHECK (service ~ '^[a-z][a-z0-9_-]{0,39}$'),
    db_role     name NOT NULL DEFAULT current_user,
    level       text NOT NULL CHECK (level IN ('DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL')),
    kind        text NOT NULL CHECK (kind ~ '^[A-Za-z][A-Za-z0-9_.]{0,79}$'),
    message     text NOT NULL DEFAULT '',
    symbol      text,
    intent_id   uuid,
    worker_id   text,
    data        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX events_ts_idx ON ops.events (ts DESC);
CREATE INDEX events_kind_ts_idx ON ops.events (kind, ts DESC);
CREATE INDEX events_symbol_ts_idx ON ops.events (symbol, ts DESC) WHERE symbol IS NOT NULL;

-- Append-only, for the owner too: an audit trail that can be edited is not one.
CREATE FUNCTION ops.reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON ops.events
    FOR EACH ROW EXECUTE FUNCTION ops.reject_change();

CREATE TABLE ops.heartbeats (
    service      text NOT NULL CHECK (service ~ '^[a-z][a-z0-9_-]{0,39}$'),
    instance_id  text NOT NULL,
    db_role      name NOT NULL DEFAULT current_user,
    pid          integer NOT NULL,
    host         text NOT NULL,
    status       text NOT NULL CHECK (status IN ('STARTING', 'RUNNING', 'DEGRADED', 'STOPPING', 'STOPPED')),
    started_ts   timestamptz NOT NULL DEFAULT clock_timestamp(),
    beat_ts      timestamptz NOT NULL DEFAULT clock_timestamp(),
    market_ts    timestamptz,
    info         jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (service, instance_id)
);
CREATE INDEX heartbeats_beat_idx ON ops.heartbeats (beat_ts DESC);

-- The broker access token, shared by every process and restart (KIS issues one a minute at most).
-- Stored encrypted (AES-GCM, key derived from the app secret): a database dump reveals nothing.
CREATE TABLE ops.broker_tokens (
    key_id           text PRIMARY KEY CHECK (key_id ~ '^[a-z0-9-]{8,80}$'),
    token_cipher     bytea,
    expires_ts       timestamptz,
    issued_ts        timestamptz,
    last_attempt_ts  timestamptz,
    updated_ts       timestamptz NOT NULL DEFAULT clock_timestamp()
);
