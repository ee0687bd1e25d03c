"""Schedules: timing, store, runs under a lease, corpus scans with file cursors and a ledger, beat."""
