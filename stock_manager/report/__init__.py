"""``stock-manager report``: one trading day as a page a trader reads (issue #17).

A launcher-level tool like ``status`` and the dashboard: it reads the database as sm_readonly and
writes files, nothing else.  ``data`` reads the day, ``model`` holds it as plain values, ``charts``
draws the PNGs (matplotlib, Agg), ``page`` the HTML that references them relatively, and ``build``
puts them together.  Nothing is imported here, so the CLI loads matplotlib only for this command.
"""
