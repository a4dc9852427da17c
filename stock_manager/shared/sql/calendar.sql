-- name: upsert_trading_day
INSERT INTO ops.trading_days (trade_date, kind, open_time, close_time, source, loaded_ts)
VALUES (%(trade_date)s, %(kind)s, %(open_time)s, %(close_time)s, %(source)s, now())
ON CONFLICT (trade_date) DO UPDATE
   SET kind = EXCLUDED.kind, open_time = EXCLUDED.open_time, close_time = EXCLUDED.close_time,
       source = EXCLUDED.source, loaded_ts = EXCLUDED.loaded_ts
 WHERE (ops.trading_days.kind, ops.trading_days.open_time, ops.trading_days.close_time)
       IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.open_time, EXCLUDED.close_time);

-- name: set_override
INSERT INTO ops.trading_day_overrides (trade_date, kind, open_time, close_time, reason, set_by, set_ts)
VALUES (%(trade_date)s, %(kind)s, %(open_time)s, %(close_time)s, %(reason)s, %(set_by)s, now())
ON CONFLICT (trade_date) DO UPDATE
   SET kind = EXCLUDED.kind, open_time = EXCLUDED.open_time, close_time = EXCLUDED.close_time,
       reason = EXCLUDED.reason, set_by = EXCLUDED.set_by, set_ts = EXCLUDED.set_ts;

-- name: delete_override
DELETE FROM ops.trading_day_overrides WHERE trade_date = %(trade_date)s;

-- name: library_days
SELECT trade_date, kind, open_time, close_time
  FROM ops.trading_days
 WHERE trade_date BETWEEN %(start)s AND %(end)s;

-- name: override_days
SELECT trade_date, kind, open_time, close_time, reason
  FROM ops.trading_day_overrides
 WHERE trade_date BETWEEN %(start)s AND %(end)s;

-- name: kis_checks
SELECT trade_date, opnd_yn
  FROM ops.kis_holiday_checks
 WHERE trade_date BETWEEN %(start)s AND %(end)s;

-- name: upsert_kis_check
INSERT INTO ops.kis_holiday_checks (trade_date, opnd_yn, raw, checked_ts)
VALUES (%(trade_date)s, %(opnd_yn)s, %(raw)s, now())
ON CONFLICT (trade_date) DO UPDATE
   SET opnd_yn = EXCLUDED.opnd_yn, raw = EXCLUDED.raw, checked_ts = EXCLUDED.checked_ts;
