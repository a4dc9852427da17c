-- The scanner: the whole universe in one statement.  Indicators come from each symbol's newest
-- 1-minute candles through the candles primary key (one short index scan per symbol).

-- name: insert_candidate
INSERT INTO trade.candidates (scan_id, symbol, signal, score, price, inputs, filters, params_version, market_ts)
VALUES (%(scan_id)s, %(symbol)s, %(signal)s, %(score)s, %(price)s, %(inputs)s, %(filters)s, %(params_version)s,
        %(market_ts)s);

-- name: candidate_id
SELECT candidate_id FROM trade.candidates WHERE scan_id = %(scan_id)s AND symbol = %(symbol)s LIMIT 1;

-- name: snapshots
-- What a strategy is given: every listed symbol with a price (%(symbol)s NULL), or one held symbol,
-- listed or not; each with its newest %(depth)s candles (newest first) within the lookback, as
-- parallel arrays; its designations, and its VI state if PriceSync wrote one today (a row of an
-- earlier day says nothing of this one).
SELECT p.symbol, s.market, coalesce(s.halted, false) AS halted, s.upper_limit, s.base_price,
       p.price, p.bid, p.ask, p.volume, p.turnover, p.change_pct, p.ts, p.open,
       s.designation, s.warn_code, coalesce(s.liquidation_trading, false) AS liquidation_trading,
       v.state AS vi, v.reference AS vi_reference, v.since AS vi_since,
       EXISTS (SELECT 1 FROM market.freshness f
                WHERE f.symbol = p.symbol AND f.source = p.source AND f.status = 'STALE') AS stale_flag,
       c.c_ts, c.c_open, c.c_high, c.c_low, c.c_close, c.c_volume, c.c_turnover
  FROM market.prices_best p
  LEFT JOIN market.symbols s ON s.symbol = p.symbol
  LEFT JOIN market.vi_state v
         ON v.symbol = p.symbol
        AND (v.ts AT TIME ZONE 'Asia/Seoul')::date = (%(now)s::timestamptz AT TIME ZONE 'Asia/Seoul')::date
  LEFT JOIN LATERAL (
      SELECT array_agg(b.bucket_ts ORDER BY b.bucket_ts DESC) AS c_ts,
             array_agg(b.open ORDER BY b.bucket_ts DESC) AS c_open,
             array_agg(b.high ORDER BY b.bucket_ts DESC) AS c_high,
             array_agg(b.low ORDER BY b.bucket_ts DESC) AS c_low,
             array_agg(b.close ORDER BY b.bucket_ts DESC) AS c_close,
             array_agg(b.volume ORDER BY b.bucket_ts DESC) AS c_volume,
             array_agg(b.turnover ORDER BY b.bucket_ts DESC) AS c_turnover
        FROM (SELECT c.bucket_ts, c.open, c.high, c.low, c.close, c.volume, c.turnover
                FROM market.candles c
               WHERE c.symbol = p.symbol AND c.bucket_ts <= %(now)s AND c.bucket_ts > %(since)s
               ORDER BY c.bucket_ts DESC
               LIMIT %(depth)s) b
  ) c ON true
 WHERE CASE WHEN %(symbol)s::text IS NULL THEN coalesce(s.listed, false) ELSE p.symbol = %(symbol)s::text END;

-- name: vi_today
-- One symbol's VI state as PriceSync wrote it today (no row: none known).
SELECT state, reference, since FROM market.vi_state
 WHERE symbol = %(symbol)s
   AND (ts AT TIME ZONE 'Asia/Seoul')::date = (%(now)s::timestamptz AT TIME ZONE 'Asia/Seoul')::date;
