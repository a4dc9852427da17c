"""Strategy's rules as pure functions: no I/O, no clock of their own, so they are tested alone."""
