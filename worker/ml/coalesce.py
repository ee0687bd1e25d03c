"""Model passes shared by the batches in flight in one worker process.

With ``lstmq worker --concurrency N`` (threads) several batches reach one model at once. Each
caller queues its items; whichever caller gets the model runs one pass over everything waiting
(the oldest first, up to ``max_items``) and hands every caller its own outputs. So one pass runs
at a time (threads never fight over the cores or the GPU's memory), and under load the passes
grow on their own: what queued while one pass ran is the next pass. Nobody waits on a timer.

::

    thread A: queue [a1 a2]  -> gets the model: pass [a1 a2]         -> done
    thread B: queue [b1]        (waits for the model, its items queued)
    thread C: queue [c1 c2]     (waits)
    thread B: gets the model: pass [b1 c1 c2] for B and C           -> B done
    thread C: gets the model: its items are done                      -> done
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(eq=False)
class _Request:
    items: Sequence[Any]
    outputs: list | None = None
    error: BaseException | None = None
    done: bool = False


class Coalescer:
    """``coalescer(items)`` returns ``run(items)``, computed in a pass shared with whoever else
    is waiting. ``run`` must return one output per item, in order."""

    def __init__(self, run: Callable[[list], list], max_items: int) -> None:
        self._run, self._max_items = run, max_items
        self._waiting: deque[_Request] = deque()
        self._queue = threading.Lock()
        self._model = threading.Lock()

    def __call__(self, items: Sequence[Any]) -> list:
        request = _Request(items)
        with self._queue:
            self._waiting.append(request)
        while not request.done:
            with self._model:
                if not request.done:  # another caller's pass may have taken it meanwhile
                    self._pass(self._take())
        if request.error is not None:
            raise request.error
        return request.outputs

    def _take(self) -> list[_Request]:
        """The oldest waiting requests that fit ``max_items`` together (always at least one)."""
        with self._queue:
            taken = [self._waiting.popleft()]
            size = len(taken[0].items)
            while self._waiting and size + len(self._waiting[0].items) <= self._max_items:
                size += len(self._waiting[0].items)
                taken.append(self._waiting.popleft())
        return taken

    def _pass(self, requests: list[_Request]) -> None:
        try:
            outputs = self._run([item for request in requests for item in request.items])
        except BaseException as exc:
            # Each caller gets it and decides (e.g. halves its batch on OOM); an interrupt or a
            # time limit also stops this thread now.
            for request in requests:
                request.error, request.done = exc, True
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for request in requests:
            request.outputs = outputs[start : start + len(request.items)]
            start += len(request.items)
            request.done = True
