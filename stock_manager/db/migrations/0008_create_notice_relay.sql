-- KIS allows one WebSocket session per app key, so PriceSync holds it and also subscribes to the
-- account's order/fill notices (H0STCNI0/9).  It relays each decrypted notice here, without the
-- account number, HTS id or holder name; Execution turns them into fills.  PriceSync owns this
-- table (it is market.* by ownership, not by meaning); Execution keeps its own record of what it
-- applied.

CREATE TABLE market.broker_notices (
    notice_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_ts  timestamptz NOT NULL DEFAULT clock_timestamp(),
    trade_date   date NOT NULL,
    tr_id        text NOT NULL CHECK (tr_id IN ('H0STCNI0', 'H0STCNI9')),
    kind         text NOT NULL CHECK (kind IN ('FILL', 'ACCEPTED', 'MODIFIED', 'CANCELLED', 'REJECTED',
                                               'IOC_CANCELLED')),
    odno         text NOT NULL CHECK (odno ~ '^[0-9]{10}$'),
    oodno        text CHECK (oodno ~ '^[0-9]{10}$'),
    side         text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    symbol       text NOT NULL,
    qty          bigint NOT NULL CHECK (qty >= 0),
    price        numeric(14, 2) NOT NULL CHECK (price >= 0),
    exec_time    time,
    order_qty    bigint,
    order_price  numeric(14, 2),
    ord_dvsn     text,
    fields       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX broker_notices_order_idx ON market.broker_notices (trade_date, odno);

CREATE FUNCTION market.notify_broker_notice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('broker_notices', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER broker_notices_notify AFTER INSERT ON market.broker_notices
    FOR EACH STATEMENT EXECUTE FUNCTION market.notify_broker_notice();

-- The state of PriceSync's broker feeds, so others can tell a quiet market from a dead stream
-- (Execution reconciles every 5 s while the notice stream is down).
CREATE TABLE market.feed_status (
    feed                text PRIMARY KEY CHECK (feed IN ('ws', 'rest')),
    connected           boolean NOT NULL,
    notices_subscribed  boolean NOT NULL DEFAULT false,
    subscriptions       integer NOT NULL DEFAULT 0,
    last_frame_ts       timestamptz,
    last_connect_ts     timestamptz,
    last_disconnect_ts  timestamptz,
    reason              text,
    updated_ts          timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- What Strategy wants watched beyond its positions and candidates.
CREATE TABLE trade.watchlist (
    symbol      text PRIMARY KEY CHECK (symbol ~ '^[0-9A-Z][0-9A-Z]{5,6}$'),
    priority    integer NOT NULL DEFAULT 0,
    reason      text,
    added_ts    timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_ts  timestamptz
);

GRANT INSERT, UPDATE, DELETE ON market.broker_notices, market.feed_status TO sm_pricesync;
GRANT INSERT, UPDATE, DELETE ON trade.watchlist TO sm_strategy;
