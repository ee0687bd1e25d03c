"""A process-local readers-writer lock: many shared holders at once, or one exclusive holder.

Batches hold it shared; a redelivered batch (its last worker may have died of it) holds it
exclusively, so it runs alone and a crash it causes is charged to it only
(``lstmq.worker.heal.redeliveries``). A waiting exclusive holder goes before shared holders that arrive
after it: a stream of ordinary batches on the other threads must not starve it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SharedExclusiveLock:
    """``with lock.shared():`` / ``with lock.exclusive():``. Not reentrant."""

    def __init__(self, condition: threading.Condition | None = None):
        # The condition is a parameter so a test can see when a holder starts waiting.
        self._cond = condition or threading.Condition()
        self._shared = 0  # holders now
        self._exclusive = False
        self._exclusive_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._exclusive and not self._exclusive_waiting)
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                if not self._shared:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._exclusive_waiting += 1
            try:
                self._cond.wait_for(lambda: not self._exclusive and not self._shared)
            except BaseException:  # interrupted: release the shared holders it was holding back
                self._exclusive_waiting -= 1
                self._cond.notify_all()
                raise
            self._exclusive_waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()
