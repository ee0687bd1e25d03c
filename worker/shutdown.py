"""Set when this worker begins its warm shutdown: a batch waiting for a retry gives way at once
(``lstmq.worker.tasks``) instead of holding the shutdown until its outage is over."""

from __future__ import annotations

import threading

stopping = threading.Event()
