"""
Operational metrics: the OpenMetrics endpoint (C{[metrics]}), the
collector reading the protocol layers' plain counters at scrape time, and
the reactor lag monitor.  See docs/operations.md.
"""
