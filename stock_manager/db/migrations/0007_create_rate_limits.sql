-- One REST budget per app key across every process (KIS counts requests per app key: 20/s real,
-- 2/s paper).  A generic cell rate algorithm: ``tat`` is the theoretical arrival time of the next
-- request; a grant moves it one emission interval on, so grants are spaced evenly and no burst can
-- put more than the limit into any one-second window.
CREATE TABLE ops.rate_limits (
    key_id      text PRIMARY KEY CHECK (key_id ~ '^[a-z0-9-]{8,80}$'),
    tat         timestamptz NOT NULL DEFAULT clock_timestamp(),
    grants      bigint NOT NULL DEFAULT 0,
    updated_ts  timestamptz NOT NULL DEFAULT clock_timestamp()
);
GRANT SELECT, INSERT, UPDATE ON ops.rate_limits TO sm_pricesync, sm_strategy, sm_execution;
