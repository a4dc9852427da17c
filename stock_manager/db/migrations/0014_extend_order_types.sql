-- Order types for the close (issue #11): CLMT (ORD_DVSN 02, 조건부지정가: a limit that turns into a
-- market order at the closing auction), CLOSE (06, 장후 시간외 종가: at the closing price,
-- 15:40-16:00, no price) and AHS (07, 시간외 단일가: a limit within ±10 % of the close, 16:00-18:00).
-- The list mirrors stock_manager/shared/trade_states.py OrderType and PRICED_ORDER_TYPES.

ALTER TABLE trade.order_intents
    DROP CONSTRAINT order_intents_order_type_check,
    DROP CONSTRAINT intent_limit_price_for_lmt,
    ADD CONSTRAINT order_intents_order_type_check
        CHECK (order_type IN ('MKT', 'LMT', 'CLMT', 'CLOSE', 'AHS')),
    ADD CONSTRAINT intent_limit_price_when_priced
        CHECK ((order_type IN ('LMT', 'CLMT', 'AHS')) = (limit_price IS NOT NULL));

ALTER TABLE trade.orders
    DROP CONSTRAINT orders_order_type_check,
    ADD CONSTRAINT orders_order_type_check
        CHECK (order_type IN ('MKT', 'LMT', 'CLMT', 'CLOSE', 'AHS'));
