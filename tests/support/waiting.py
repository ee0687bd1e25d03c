"""The one bounded wait: tests poll for the event they need instead of sleeping a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_S = 0.2


def wait_until(
    predicate: Callable[[], object],
    timeout_s: float,
    what: str | Callable[[], str] = "condition",
    *,
    interval_s: float = POLL_S,
):
    """Poll ``predicate`` until it returns something truthy and return that; fail after ``timeout_s``.

    ``what`` may be a callable, evaluated only on timeout (e.g. to show a log as it is then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what() if callable(what) else what}")
