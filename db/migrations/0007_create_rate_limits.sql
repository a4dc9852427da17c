-- One REST budget per app key across every process (KIS counts requests per app key: 20/s real,
-- 2/s paper).  Each row keeps the times of the most recent grants; a request is granted only while
-- fewer than its priority's share of the limit were granted within the window.
CREATE TABLE ops.rate_limits (
    key_id      text PRIMARY KEY CHECK (key_id ~ '^[a-z0-9-]{8,80}$'),
    grants      timestamptz[] NOT NULL DEFAULT '{}',
    updated_ts  timestamptz NOT NULL DEFAULT clock_timestamp()
);
GRANT SELECT, INSERT, UPDATE ON ops.rate_limits TO sm_pricesync, sm_strategy, sm_execution;
