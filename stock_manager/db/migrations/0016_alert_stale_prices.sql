-- Exits never judge a stale price (issue #11): Strategy's two events about it are alerts.
--
-- PriceSyncStale (ERROR): PriceSync's heartbeat went stale and Strategy moved trading to REDUCING
-- (the reason, 'PRICESYNC_STALE: no heartbeat for Ns', is on trade.trading_state, so the status
-- screen and the TradingHalted alert condition show it too).  QuoteUnavailable (WARN): a held
-- symbol's published quote is stale and the broker's REST quote could not be had either, so no exit
-- decision is taken on it.
--
-- Strategy needs no new grant for its REST quotes: it already shares the broker token
-- (ops.broker_tokens, 0006) and the request budget (ops.rate_limits, 0007) with the other services.

INSERT INTO ops.alert_kinds (kind) VALUES ('PriceSyncStale'), ('QuoteUnavailable')
ON CONFLICT (kind) DO NOTHING;
