"""Cutting a stream of documents into batches: pure functions, no I/O.

One message carries many documents (per-message overhead caps a one-document design near
600 docs/s), but a message must stay small enough for Redis and for a worker's memory, so a
batch closes at whichever limit it reaches first::

    items:   d0 d1 d2 d3 d4 d5 d6 ...
             └──┬───┘ └─┬┘ └──┬─ ...
    batches: max_items docs, or fewer when their sizes would pass max_bytes
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from lstmq.contract import MAX_BATCH_DOCS
from lstmq.errors import InputError

T = TypeVar("T")


def chunked(
    items: Iterable[T], max_items: int, max_bytes: int, size: Callable[[T], int], grow_to: int | None = None
) -> Iterator[list[T]]:
    """Consecutive runs of ``items`` with at most ``max_items`` each and a total ``size`` of
    at most ``max_bytes``; an item larger than ``max_bytes`` travels alone. Lazy: holds one
    batch at a time. ``grow_to``: each batch may hold twice the items of the one before, up
    to ``grow_to`` (a first chunk that comes soon, later ones that cost less per item)."""
    if max_items < 1 or max_bytes < 1:
        raise ValueError("max_items and max_bytes must be positive")
    batch: list[T] = []
    batch_bytes = 0
    for item in items:
        item_bytes = size(item)
        if batch and (len(batch) == max_items or batch_bytes + item_bytes > max_bytes):
            yield batch
            batch, batch_bytes = [], 0
            if grow_to and max_items < grow_to:
                max_items = min(2 * max_items, grow_to)
        batch.append(item)
        batch_bytes += item_bytes
    if batch:
        yield batch


def batch_size_for(requested: int | None, default: int) -> int:
    """The documents per message: ``requested`` if in range, else the (capped) default."""
    if requested is None:
        return max(1, min(default, MAX_BATCH_DOCS))
    if not 1 <= requested <= MAX_BATCH_DOCS:
        raise InputError(f"--batch-size must be between 1 and {MAX_BATCH_DOCS}, got {requested}")
    return requested
