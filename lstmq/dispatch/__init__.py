"""Dispatch: the database decides who goes next, the broker carries only what workers can take now.

A submit records its documents and sends at most a small first window of batches (``send``), so
a job alone on the system starts at once. Everything else is sent by the dispatcher, which runs
in one worker at a time (``lease``) and keeps each queue only as full as its live workers' slots
plus a margin (``send.capacity``): the broker holds O(workers) messages whatever the backlog.
Who is served next (``order``): higher priority first, at batch boundaries; within a priority,
owners share by weight; an owner's jobs share its part round-robin.
"""
