"""The webhook delivery loop, a thread in the main process of every worker (as the heartbeat):
every ``POLL_S`` it POSTs the outbox's due deliveries (``lstmq.webhooks.delivery``; several
workers share them by compare-and-set). Without ``LSTMQ_WEBHOOK_SECRET`` it sends nothing (a
delivery waits, unsigned bodies are never sent) and says so once."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError

from lstmq.db.engine import make_engine
from lstmq.db.schema import utcnow
from lstmq.errors import TransientError
from lstmq.settings import get_settings
from lstmq.webhooks.delivery import BATCH, deliver_due

POLL_S = 2.0
log = logging.getLogger("lstmq.worker")


class WebhookSender(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="lstmq-webhooks", daemon=True)
        self.settings = get_settings()
        self.engine = make_engine(self.settings.database)
        self.stopped = threading.Event()
        self.failing = False

    def run(self) -> None:
        if self.settings.webhook_secret is None:
            log.info("webhooks: LSTMQ_WEBHOOK_SECRET is not set; this worker delivers none")
            return
        while not self.stopped.is_set():
            if self.tick() < BATCH:  # a full pass: more may be due at once
                self.stopped.wait(POLL_S)

    def tick(self) -> int:
        secret = self.settings.webhook_secret.get_secret_value()
        try:
            sent = deliver_due(self.engine, secret, self.settings.webhook_allow_private, utcnow())
            self._failing(None)
            return sent
        except (SQLAlchemyError, TransientError) as exc:
            self._failing(exc)
            return 0
        finally:
            self.engine.dispose()  # no connection left open for a fork to inherit

    def _failing(self, exc: Exception | None) -> None:
        if exc is not None and not self.failing:
            log.error("webhook deliveries failing (retrying every %g s): %s", POLL_S, str(exc).splitlines()[0])
        elif exc is None and self.failing:
            log.warning("webhook deliveries work again")
        self.failing = exc is not None

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
