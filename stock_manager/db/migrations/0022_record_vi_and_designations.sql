-- Volatility interruptions and designations (issue #12 section 2), as PriceSync reads them from
-- KIS: Strategy keeps entries away from both and leaves an order resting in a VI auction alone.
-- The vocabularies are stock_manager.shared.market_status (ViState, the designation and warning
-- codes); the CHECKs below hold the same values.

-- Designations from the symbol master and from inquire-price:
--   designation          iscd_stat_cls_code when it is one (51 관리, 52 투자위험, 53 투자경고,
--                        54 투자주의, 57 증거금100%, 58 거래정지, 59 단기과열); NULL for none
--                        (00, 55 신용가능)
--   warn_code            mrkt_warn_cls_code: 00 none, 01 투자주의, 02 투자경고, 03 투자위험
--   liquidation_trading  sltr_yn: 정리매매, the last trading days before a delisting
ALTER TABLE market.symbols
    ADD COLUMN designation         text CHECK (designation ~ '^[0-9]{2}$' AND designation NOT IN ('00', '55')),
    ADD COLUMN warn_code           text CHECK (warn_code IN ('00', '01', '02', '03')),
    ADD COLUMN liquidation_trading boolean NOT NULL DEFAULT false;

-- The VI state per symbol, as the newest data says (H0STCNT0's HOUR_CLS_CODE and VI_STND_PRC,
-- inquire-price's vi_cls_code); one row per symbol, written only when something changes.
--   state      NONE | STATIC | DYNAMIC | BOTH | AUCTION (the stream says a VI auction runs but
--              not which VI)
--   reference  VI_STND_PRC: the static VI's reference price (the open, or the last VI's price)
--   since      market time the state began
--   ts         market time of the data that last changed the row: a day's rows are the ones
--              with that day's ts, and older data never overwrites newer
CREATE TABLE market.vi_state (
    symbol      text PRIMARY KEY CHECK (symbol ~ '^[0-9A-Z][0-9A-Z]{5,6}$'),
    state       text NOT NULL CHECK (state IN ('NONE', 'STATIC', 'DYNAMIC', 'BOTH', 'AUCTION')),
    reference   bigint CHECK (reference > 0),
    since       timestamptz NOT NULL,
    source      text NOT NULL CHECK (source IN ('WS', 'REST')),
    ts          timestamptz NOT NULL,
    updated_ts  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Every change of a row above, append-only: when each VI began and ended, for the day's review.
CREATE TABLE market.vi_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol       text NOT NULL,
    state        text NOT NULL CHECK (state IN ('NONE', 'STATIC', 'DYNAMIC', 'BOTH', 'AUCTION')),
    reference    bigint,
    source       text NOT NULL CHECK (source IN ('WS', 'REST')),
    ts           timestamptz NOT NULL,
    received_ts  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX vi_history_symbol_ts_idx ON market.vi_history (symbol, ts);

-- PriceSync owns market.*; SELECT for everyone else comes by default privileges (0006, 0013).
GRANT INSERT, UPDATE, DELETE ON market.vi_state, market.vi_history TO sm_pricesync;
