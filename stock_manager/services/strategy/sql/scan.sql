-- The scanner: the whole universe in one statement.  Indicators come from each symbol's newest
-- 1-minute candles through the candles primary key (one short index scan per symbol).

-- name: scan_universe
SELECT s.symbol, s.market, s.halted, s.upper_limit, s.base_price,
       p.price, p.bid, p.ask, p.volume, p.turnover, p.change_pct, p.ts,
       EXISTS (SELECT 1 FROM market.freshness f
                WHERE f.symbol = p.symbol AND f.source = p.source AND f.status = 'STALE') AS stale_flag,
       coalesce(c.n_bars, 0) AS n_bars, c.sma_short, c.sma_long, c.recent_high
  FROM market.symbols s
  JOIN market.prices_best p ON p.symbol = s.symbol
  LEFT JOIN LATERAL (
      SELECT count(*)::int AS n_bars,
             avg(b.close) FILTER (WHERE b.rn <= %(short)s) AS sma_short,
             avg(b.close) FILTER (WHERE b.rn <= %(long)s) AS sma_long,
             max(b.high) FILTER (WHERE b.rn BETWEEN 2 AND %(breakout)s + 1) AS recent_high
        FROM (SELECT c.close, c.high, row_number() OVER (ORDER BY c.bucket_ts DESC) AS rn
                FROM market.candles c
               WHERE c.symbol = s.symbol AND c.bucket_ts <= %(now)s AND c.bucket_ts > %(since)s
               ORDER BY c.bucket_ts DESC
               LIMIT %(depth)s) b
  ) c ON true
 WHERE s.listed;

-- name: insert_candidate
INSERT INTO trade.candidates (scan_id, symbol, signal, score, price, inputs, filters, params_version, market_ts)
VALUES (%(scan_id)s, %(symbol)s, %(signal)s, %(score)s, %(price)s, %(inputs)s, %(filters)s, %(params_version)s,
        %(market_ts)s);

-- name: candidate_id
SELECT candidate_id FROM trade.candidates WHERE scan_id = %(scan_id)s AND symbol = %(symbol)s LIMIT 1;

-- name: quote
SELECT p.symbol, p.price, p.bid, p.ask, p.ts, p.turnover, s.market, s.upper_limit, s.base_price,
       c.n AS n_bars, c.sma_short
  FROM market.prices_best p
  LEFT JOIN market.symbols s ON s.symbol = p.symbol
  LEFT JOIN LATERAL (
      SELECT count(*)::int AS n, avg(b.close) AS sma_short
        FROM (SELECT c.close FROM market.candles c
               WHERE c.symbol = p.symbol AND c.bucket_ts <= %(now)s AND c.bucket_ts > %(since)s
               ORDER BY c.bucket_ts DESC LIMIT %(short)s) b
  ) c ON true
 WHERE p.symbol = %(symbol)s;
