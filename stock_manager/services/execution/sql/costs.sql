-- name: costs_of_day
-- Today's trades and what we charged for them, as the ledger of fills says (manual orders' included).
SELECT coalesce(sum(f.fee + f.tax), 0)::bigint AS costs,
       coalesce(sum(f.qty * f.price) FILTER (WHERE f.side = 'BUY'), 0)::bigint AS buy_amt,
       coalesce(sum(f.qty * f.price) FILTER (WHERE f.side = 'SELL'), 0)::bigint AS sell_amt
  FROM trade.fills f
  JOIN trade.orders o ON o.order_id = f.order_id
 WHERE o.trade_date = %(trade_date)s;

-- name: last_cost_mismatch
-- The latest difference recorded, so an unchanged one is not recorded again every pass.
SELECT data
  FROM ops.events
 WHERE kind = 'CostMismatch' AND service = %(service)s
 ORDER BY ts DESC
 LIMIT 1;
