"""Length-sorted batching: pure functions, no torch.

::

    input order      0:len 9   1:len 2   2:len 30   3:len 3   4:len 8
    sorted by len    1(2) 3(3) 4(8) 0(9) 2(30)
    batches          [1, 3]  [4, 0]  [2]       (max_docs=2; each padded to its own longest)
    results          scattered back to positions 1,3,4,0,2 -> input order restored

Sorting first means short texts are padded to short lengths, so a batch costs about what
its real tokens cost. A batch is also closed when docs x longest length would exceed
``max_cells``, which bounds memory for batches of long texts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def plan_batches(lengths: Sequence[int], max_docs: int, max_cells: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length (ascending)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = max(lengths[i], 1)  # ascending, so this doc is the longest so far
        too_big = max_cells is not None and current and (len(current) + 1) * longest > max_cells
        if len(current) == max_docs or too_big:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def shuffled_buckets(
    lengths: Sequence[int], batch_docs: int, rng: random.Random, pool_batches: int = 50
) -> list[list[int]]:
    """Training batches: shuffle, sort within pools of ``pool_batches`` batches, shuffle batches.

    Keeps batches length-homogeneous (cheap padding) while every epoch still sees a new mix.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_docs * pool_batches
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[j : j + batch_docs] for j in range(0, len(chunk), batch_docs))
    rng.shuffle(batches)
    return batches


def pad(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> list[list[int]]:
    """Right-pad to the longest; empty sequences become one pad token (LSTMs need length >= 1)."""
    width = max((len(s) for s in sequences), default=1) or 1
    return [list(s) + [pad_id] * (width - len(s)) for s in sequences]


def scatter(batches: Sequence[Sequence[int]], results: Sequence[Sequence], size: int) -> list:
    """Put each batch's results back at their original positions."""
    out: list = [None] * size
    for indices, values in zip(batches, results, strict=True):
        for i, value in zip(indices, values, strict=True):
            out[i] = value
    return out
