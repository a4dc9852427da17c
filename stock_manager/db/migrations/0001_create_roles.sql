-- The per-service roles.  Roles belong to the whole cluster, so two databases migrating at once may
-- race to create them: both "already exists" errors are expected and ignored.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['sm_pricesync', 'sm_strategy', 'sm_execution', 'sm_readonly'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT', r);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END LOOP;
END
$$;

CREATE SCHEMA IF NOT EXISTS market;
CREATE SCHEMA IF NOT EXISTS trade;
CREATE SCHEMA IF NOT EXISTS ops;

-- Nobody but the owner creates objects; every service only reads and writes rows it is granted.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA market, trade, ops FROM PUBLIC;
GRANT USAGE ON SCHEMA market, trade, ops TO sm_pricesync, sm_strategy, sm_execution, sm_readonly;
