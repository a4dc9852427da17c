-- Our fees and tax against the broker's (issue #12 part 3).
--
-- CostMismatch (WARN): at a position check Execution compares today's fees and tax in trade.fills
-- with the broker's own total (inquire-balance output2 thdt_tlex_amt), when both describe the same
-- trades (today's buy and sell amounts agree), and records a difference once per distinct pair of
-- totals.  A difference means the fee setting (KIS_FEE_SCHEDULE / KIS_COMMISSION_RATE) or a tax
-- rate is not what the account pays, so every PnL figure is off by it: an operator should look.
--
-- Execution needs no new grant: it already inserts its own ops.events rows and reads them (0006).

INSERT INTO ops.alert_kinds (kind) VALUES ('CostMismatch')
ON CONFLICT (kind) DO NOTHING;
