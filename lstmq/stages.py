"""Stage counters: the items each pipeline stage handled and the seconds it spent on them.

Cheap enough to stay on in the code (two clock reads per chunk or batch), so ``lstmq bench
pipeline`` names the slowest stage from what the code itself measured, not from a profiler.
One registry per process. A worker process reports its counters by writing them to a file
in ``LSTMQ_STAGES_DIR`` (set by the bench; a diagnostic switch, not a setting) with ``flush()``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TypeVar

STAGES_DIR_ENV = "LSTMQ_STAGES_DIR"
T = TypeVar("T")


@dataclass
class Stage:
    items: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Items per second spent in this stage (infinite when it took no measurable time)."""
        return self.items / self.seconds if self.seconds > 0 else float("inf")


_stages: dict[str, Stage] = {}
_lock = threading.Lock()  # stages may be counted from several threads of one process
_flushing = threading.Lock()


def add(name: str, items: int, seconds: float) -> None:
    with _lock:
        stage = _stages.setdefault(name, Stage())
        stage.items += items
        stage.seconds += seconds


@contextmanager
def timed(name: str, items: int) -> Iterator[None]:
    """Count ``items`` and the time the block takes (also when it raises) under ``name``."""
    start = perf_counter()
    try:
        yield
    finally:
        add(name, items, perf_counter() - start)


def counted(name: str, items: Iterable[T]) -> Iterator[T]:
    """``items`` unchanged, with the time spent producing each (e.g. reading) counted under
    ``name``: summed here and added once, when the iteration ends or is abandoned."""
    iterator, count, seconds = iter(items), 0, 0.0
    try:
        while True:
            start = perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                seconds += perf_counter() - start
            count += 1
            yield item
    finally:
        add(name, count, seconds)


def snapshot() -> dict[str, Stage]:
    with _lock:
        return {name: Stage(stage.items, stage.seconds) for name, stage in _stages.items()}


def reset() -> None:
    with _lock:
        _stages.clear()


def flush() -> None:
    """Write this process's counters to ``$LSTMQ_STAGES_DIR/PID.json`` when that is set."""
    folder = os.environ.get(STAGES_DIR_ENV)
    if not folder:
        return
    target = Path(folder) / f"{os.getpid()}.json"
    temporary = target.with_suffix(".tmp")
    with _flushing:  # threads of one worker flush too: one file, the newest counters last
        temporary.write_text(json.dumps({name: [s.items, s.seconds] for name, s in snapshot().items()}))
        temporary.replace(target)  # a reader never sees half a file


def collect(folder: Path) -> dict[str, Stage]:
    """The counters every process flushed into ``folder``, summed per stage."""
    total: dict[str, Stage] = {}
    for path in sorted(folder.glob("*.json")):
        for name, (items, seconds) in json.loads(path.read_text()).items():
            stage = total.setdefault(name, Stage())
            stage.items += items
            stage.seconds += seconds
    return total
