"""Running out of GPU memory is transient: split the batch and run the halves.

A batch that does not fit now (long texts, another process on the GPU) fits in smaller pieces,
so it must not fail its documents for good. Only a document that does not fit even alone fails,
and alone. Both tasks run their model through ``run_in_halves``::

    [d0 d1 d2 d3 d4]        out of memory
    [d0 d1] [d2 d3 d4]      each half the same way, results kept in input order
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

log = logging.getLogger("lstmq.worker")


@dataclass(frozen=True)
class TooLarge:
    """The result of a document that does not fit in GPU memory alone: it fails that document."""

    error: str


def run_in_halves(run: Callable[[list], list], items: list) -> list:
    """``run(items)``, one result per item; on CUDA out-of-memory, free the cache and run each
    half the same way. A single item that still does not fit gets a ``TooLarge`` result."""
    try:
        return run(items)
    except torch.cuda.OutOfMemoryError as exc:
        error = f"does not fit in GPU memory even alone: {exc}"
    torch.cuda.empty_cache()  # outside the except: the traceback no longer holds the batch's tensors
    if len(items) == 1:
        return [TooLarge(error)]
    log.warning("out of GPU memory on %d documents: running them in halves", len(items))
    half = len(items) // 2
    return run_in_halves(run, items[:half]) + run_in_halves(run, items[half:])
