-- The daily summary's profit factor and maximum drawdown (issue #17), beside the win rate.
--   profit_factor  gross wins over gross losses of the day's round trips, after fees and tax;
--                  NULL when no trip lost (the ratio is unbounded, not a number to compare)
--   max_drawdown   won: the largest peak-to-trough fall of the day's realized equity, the round
--                  trips summed in the order they closed (exit_ts, trip_id), starting from 0
-- Strategy computes both in stock_manager/services/strategy/rules/summary.py and writes them with
-- the rest of the summary; the UPDATE below fills in the days summarized before this migration,
-- by the same definitions, so no old day reads as "no drawdown".

ALTER TABLE trade.daily_summaries
    ADD COLUMN profit_factor  numeric CHECK (profit_factor >= 0),
    ADD COLUMN max_drawdown   numeric(20, 2) NOT NULL DEFAULT 0 CHECK (max_drawdown >= 0);

UPDATE trade.daily_summaries ds
   SET profit_factor = x.profit_factor, max_drawdown = x.max_drawdown
  FROM (
    SELECT trade_date,
           round(coalesce(sum(pnl) FILTER (WHERE pnl > 0), 0) / nullif(-sum(pnl) FILTER (WHERE pnl < 0), 0), 4)
               AS profit_factor,
           max(peak - equity) AS max_drawdown
      FROM (
        SELECT trade_date, pnl, equity,
               greatest(0, max(equity) OVER (PARTITION BY trade_date ORDER BY exit_ts, trip_id)) AS peak
          FROM (
            SELECT trade_date, pnl, exit_ts, trip_id,
                   sum(pnl) OVER (PARTITION BY trade_date ORDER BY exit_ts, trip_id) AS equity
              FROM trade.round_trips
          ) curve
      ) peaks
     GROUP BY trade_date
  ) x
 WHERE x.trade_date = ds.trade_date;
