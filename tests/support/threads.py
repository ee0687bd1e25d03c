"""Run one function on several inputs at once, each in its own thread, released together."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


def run_together(fn: Callable, inputs: Sequence, timeout_s: float = 120) -> list:
    """``[fn(x) for x in inputs]``, each call in its own thread, all started at one barrier (so
    they overlap: e.g. their model passes merge); a call that raised or never finished fails."""
    results: dict[int, object] = {}
    start = threading.Barrier(len(inputs))

    def run(i: int) -> None:
        start.wait(timeout=timeout_s)
        results[i] = fn(inputs[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout_s)
    assert sorted(results) == list(range(len(inputs))), "a thread raised or did not finish"
    return [results[i] for i in range(len(inputs))]
