"""One line when the worker loses its broker and one when it is back, however long the outage.

Celery's consumer reconnects forever (``broker_connection_max_retries=None``) and logs every
attempt; these filters on its two loggers keep the first line of an outage and the reconnect
that ends it, and drop the repeats in between.
"""

from __future__ import annotations

import logging
import time

CONSUMER_LOGGER = "celery.worker.consumer.consumer"  # "Connection to broker lost", "Cannot connect"
CONNECTION_LOGGER = "celery.worker.consumer.connection"  # "Connected to ..."
log = logging.getLogger("lstmq.worker")


class BrokerOutage(logging.Filter):
    """Remembers when the outage began; lets its first record and its end through."""

    def __init__(self) -> None:
        super().__init__()
        self.since: float | None = None

    def lost(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Cannot connect" not in message and "Connection to broker lost" not in message:
            return True
        first = self.since is None
        if first:
            self.since = time.monotonic()
            log.error("broker unreachable: reconnecting until it is back (models stay loaded)")
        return first

    def connected(self, record: logging.LogRecord) -> bool:
        if self.since is not None and record.getMessage().startswith("Connected to"):
            log.warning("broker reachable again after %.0f s", time.monotonic() - self.since)
            self.since = None
        return True


def log_outages_once() -> BrokerOutage:
    """Install the filters on Celery's consumer loggers; returns the outage state they keep."""
    outage = BrokerOutage()
    consumer, connection = logging.getLogger(CONSUMER_LOGGER), logging.getLogger(CONNECTION_LOGGER)
    consumer.addFilter(outage.lost)
    connection.addFilter(outage.connected)
    return outage
