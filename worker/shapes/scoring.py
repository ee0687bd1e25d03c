"""Score generated images against what their captions state, with the oracle.

Exact match: the right number of objects, and for each stated object its colour, shape and
any stated size and grid cell right; for two objects also the relation's shared row/column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import permutations

from lstmq.worker.shapes.captions import Spec
from lstmq.worker.shapes.oracle import Found


@dataclass
class Tally:
    """Counts of right/total per attribute, plus exact matches."""

    right: Counter = field(default_factory=Counter)
    total: Counter = field(default_factory=Counter)

    def add(self, key: str, ok: bool) -> None:
        self.total[key] += 1
        self.right[key] += int(ok)

    def rates(self) -> dict[str, float]:
        return {k: self.right[k] / self.total[k] for k in sorted(self.total)}


def object_checks(spec_obj, found: Found | None) -> dict[str, bool]:
    """attribute -> right?, for the attributes this object's caption states."""
    checks = {
        "colour": found is not None and found.colour == spec_obj.colour,
        "shape": found is not None and found.shape == spec_obj.shape,
    }
    if spec_obj.size is not None:
        checks["size"] = found is not None and found.size == spec_obj.size
    if spec_obj.row is not None or spec_obj.col is not None:
        checks["position"] = found is not None and all(
            want is None or want == got for want, got in ((spec_obj.row, found.row), (spec_obj.col, found.col))
        )
    return checks


def relation_holds(spec: Spec, found: tuple[Found | None, ...]) -> bool:
    """The unnamed axis is shared: one row for left/right, one column for above/below."""
    a, b = found
    if a is None or b is None:
        return False
    if spec.objects[0].row is None:
        return a.row is not None and a.row == b.row
    return a.col is not None and a.col == b.col


def best_assignment(spec: Spec, found: list[Found]) -> tuple[Found | None, ...]:
    """The found objects (in caption order) that agree with the caption on most attributes."""
    n = len(spec.objects)
    pool: list[Found | None] = list(found[: n + 2]) + [None] * n

    def agreement(combo):
        return sum(sum(object_checks(s, f).values()) for s, f in zip(spec.objects, combo, strict=True))

    return max(permutations(pool, n), key=agreement)


def score(spec: Spec, found: list[Found], tally: Tally | None = None) -> bool:
    """Exact match of one image; per-attribute results go into ``tally`` when given."""
    combo = best_assignment(spec, found)
    ok = len(found) == len(spec.objects)
    if tally is not None:
        tally.add("count", ok)
    for spec_obj, f in zip(spec.objects, combo, strict=True):
        for attribute, right in object_checks(spec_obj, f).items():
            ok &= right
            if tally is not None:
                tally.add(attribute, right)
    if spec.relation is not None:
        holds = relation_holds(spec, combo)
        ok &= holds
        if tally is not None:
            tally.add("relation", holds)
    if tally is not None:
        tally.add("exact", ok)
    return ok
