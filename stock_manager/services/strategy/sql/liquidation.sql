-- The close: the book to liquidate, the closing price after-hours sells are priced from, what the
-- day's liquidations got, and whether the day has been closed.

-- name: liquidation_book
-- vi: the symbol's VI state today (NULL: none known), so an order resting in a VI auction is left there.
SELECT p.symbol, p.qty, p.worker_id, p.trip_first_fill_id,
       b.price, b.bid, b.ask, b.turnover, s.lower_limit, s.base_price, s.market, v.state AS vi
  FROM trade.position_state p
  LEFT JOIN market.prices_best b ON b.symbol = p.symbol
  LEFT JOIN market.symbols s ON s.symbol = p.symbol
  LEFT JOIN market.vi_state v
         ON v.symbol = p.symbol
        AND (v.ts AT TIME ZONE 'Asia/Seoul')::date = (%(now)s::timestamptz AT TIME ZONE 'Asia/Seoul')::date
 WHERE p.status = 'OPEN'
 ORDER BY p.symbol;

-- name: closing_price
-- The day's close: what our own post-close (06) sells traded at, which is the close by definition;
-- else the last 1-minute bar of the closing call, which holds its uncross (a thin name's last bar
-- from earlier in the day is not its close).  Else none: the broker's quote is asked.
SELECT coalesce(
    (SELECT f.price FROM trade.fills f JOIN trade.orders o ON o.order_id = f.order_id
      WHERE f.symbol = %(symbol)s AND o.ord_dvsn = '06' AND o.trade_date = %(trade_date)s
      ORDER BY f.fill_id DESC LIMIT 1),
    (SELECT c.close FROM market.candles c
      WHERE c.symbol = %(symbol)s AND c.bucket_ts >= %(closing_call)s AND c.bucket_ts < %(post_close)s
      ORDER BY c.bucket_ts DESC LIMIT 1)) AS close;

-- name: liquidation_sells_on_date
-- Every liquidation sell of a trade date with what it filled, oldest first; the trip is the
-- action_key's third part (exit:<symbol>:<trip>:<n>).
SELECT i.symbol, split_part(i.action_key, ':', 3) AS trip, i.order_type, i.market_ts, ic.ref_price, i.qty,
       coalesce(sum(f.qty), 0)::bigint AS filled_qty, coalesce(sum(f.qty * f.price), 0)::numeric(20, 2) AS filled_amount
  FROM trade.order_intents i
  LEFT JOIN trade.intent_context ic ON ic.intent_id = i.intent_id
  LEFT JOIN trade.orders o ON o.intent_id = i.intent_id
  LEFT JOIN trade.fills f ON f.order_id = o.order_id
 WHERE i.side = 'SELL' AND i.reason IN ('FORCED_LIQUIDATION', 'FLATTEN')
   AND i.market_ts >= %(lo)s AND i.market_ts < %(hi)s
 GROUP BY i.intent_id, ic.ref_price
 ORDER BY i.market_ts, i.created_ts;

-- name: day_closed
-- The close runs once per trade date, whichever process gets there and however often it restarts.
SELECT EXISTS (SELECT 1 FROM ops.events
                WHERE kind = 'DailySummary' AND service = 'strategy'
                  AND data ->> 'trade_date' = %(trade_date)s) AS closed;
