"""The read-only web dashboard, its Prometheus ``/metrics`` and the alert loop (``stock-manager run dashboard``).

Pages and metrics read the ``monitor.*`` views as ``sm_readonly``; the alert loop is the process's
only writer, as ``sm_dashboard`` (its alert bookkeeping, its heartbeat and its own events).
"""
