"""Strategy: workers that scan, lock a symbol, enter, hold and exit, writing intents for Execution.

Where things live: ``rules/`` the pure decisions (scan filters and signal, exits, risk, sizing,
positions from fills, the daily summary, liquidation order); ``sql/`` every query as a named block;
``workers.py`` the IDLE -> SCAN -> HOLD -> EXIT state machine; ``locks.py`` per-symbol locks;
``scanner.py`` the universe scan; ``book.py`` positions, round trips and summaries from fills;
``liquidation.py`` forced liquidation, flatten and the close; ``recovery.py`` start-up recovery;
``app.py`` the process and its loops; ``main.py`` the entry point.
"""
