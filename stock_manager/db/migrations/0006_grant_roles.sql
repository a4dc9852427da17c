-- Who may write what (CONTRACT.md section 3).  Everyone reads everything; writes follow ownership.
-- Later migrations grant their own new tables; SELECT on future tables comes by default.

GRANT SELECT ON ALL TABLES IN SCHEMA market, trade, ops TO sm_pricesync, sm_strategy, sm_execution, sm_readonly;
ALTER DEFAULT PRIVILEGES IN SCHEMA market, trade, ops
    GRANT SELECT ON TABLES TO sm_pricesync, sm_strategy, sm_execution, sm_readonly;

-- PriceSync owns market.*
GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA market TO sm_pricesync;
GRANT EXECUTE ON FUNCTION market.ensure_tick_partition(date) TO sm_pricesync;

-- Strategy inserts intents (never changes them) and owns its own state.
GRANT INSERT ON trade.order_intents TO sm_strategy;
GRANT INSERT, UPDATE, DELETE ON
    trade.workers, trade.worker_history, trade.symbol_locks, trade.candidates, trade.position_state,
    trade.reentry_candidates, trade.daily_summaries, trade.strategy_params, trade.trading_state
    TO sm_strategy;

-- Execution owns orders and fills, and may move only the status columns of an intent.
GRANT INSERT, UPDATE ON trade.orders TO sm_execution;
GRANT INSERT ON trade.fills TO sm_execution;
GRANT UPDATE (status, status_reason, claimed_by, claimed_ts, attempts, updated_ts)
    ON trade.order_intents TO sm_execution;

-- ops: each service writes its own rows (row-level security below); the shared broker token
-- is written by whichever service needs it first.
GRANT INSERT ON ops.events TO sm_pricesync, sm_strategy, sm_execution;
GRANT INSERT, UPDATE, DELETE ON ops.heartbeats TO sm_pricesync, sm_strategy, sm_execution;
GRANT INSERT, UPDATE ON ops.broker_tokens TO sm_pricesync, sm_strategy, sm_execution;
REVOKE SELECT ON ops.broker_tokens FROM sm_readonly;

ALTER TABLE ops.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_read ON ops.events FOR SELECT USING (true);
CREATE POLICY events_write_own ON ops.events FOR INSERT
    WITH CHECK (db_role = current_user AND 'sm_' || service = current_user::text);

ALTER TABLE ops.heartbeats ENABLE ROW LEVEL SECURITY;
CREATE POLICY heartbeats_read ON ops.heartbeats FOR SELECT USING (true);
CREATE POLICY heartbeats_insert_own ON ops.heartbeats FOR INSERT
    WITH CHECK (db_role = current_user AND 'sm_' || service = current_user::text);
CREATE POLICY heartbeats_update_own ON ops.heartbeats FOR UPDATE
    USING (db_role = current_user) WITH CHECK (db_role = current_user AND 'sm_' || service = current_user::text);
CREATE POLICY heartbeats_delete_own ON ops.heartbeats FOR DELETE USING (db_role = current_user);
