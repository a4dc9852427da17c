-- The KRX trading calendar (issue #12 part 1): which dates trade and at what hours.
--
-- Three layers, read together by stock_manager.shared.calendar (the kind vocabulary is DayKind
-- there, the same three values CHECKed here):
--   ops.trading_days           exchange-calendars XKRX, one row per weekday, written by
--                              `stock-manager migrate` and `stock-manager calendar refresh`
--   ops.trading_day_overrides  the operator's word on a day (`stock-manager calendar set`), for
--                              what the library learns late: the CSAT day's 10:00-16:30, a new holiday
--   ops.kis_holiday_checks     KIS's own answer (chk-holiday, opnd_yn), asked by Strategy once a
--                              day in paper/live: the broker decides whether it takes orders
-- The services read; only the operator (the migrating owner) writes the first two, Strategy the third.

CREATE TABLE ops.trading_days (
    trade_date  date PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('REGULAR', 'SHIFTED', 'CLOSED')),
    open_time   time,
    close_time  time,
    source      text NOT NULL DEFAULT 'exchange-calendars XKRX',
    loaded_ts   timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'CLOSED') = (open_time IS NULL AND close_time IS NULL)),
    CHECK (kind = 'CLOSED' OR (open_time IS NOT NULL AND close_time IS NOT NULL AND open_time < close_time))
);

CREATE TABLE ops.trading_day_overrides (
    trade_date  date PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('REGULAR', 'SHIFTED', 'CLOSED')),
    open_time   time,
    close_time  time,
    reason      text NOT NULL DEFAULT '',
    set_by      text NOT NULL DEFAULT current_user,
    set_ts      timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'CLOSED') = (open_time IS NULL AND close_time IS NULL)),
    CHECK (kind = 'CLOSED' OR (open_time IS NOT NULL AND close_time IS NOT NULL AND open_time < close_time))
);

CREATE TABLE ops.kis_holiday_checks (
    trade_date  date PRIMARY KEY,
    opnd_yn     text NOT NULL CHECK (opnd_yn IN ('Y', 'N')),
    raw         jsonb NOT NULL DEFAULT '{}'::jsonb,
    checked_ts  timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT ON ops.trading_days, ops.trading_day_overrides, ops.kis_holiday_checks
    TO sm_pricesync, sm_strategy, sm_execution, sm_readonly, sm_dashboard;
GRANT INSERT, UPDATE ON ops.kis_holiday_checks TO sm_strategy;
