"""The HTTP API (``lstmq serve``): a client of ``producer`` and ``lstmq.db``, nothing more.

Torch-free: it submits by the same path as ``lstmq submit`` and reads by the same queries as
``lstmq status/results``; workers do the work.
"""
