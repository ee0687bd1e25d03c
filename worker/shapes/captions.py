"""Captions of the shapes world: sample a scene, its caption, and what the caption states.

A caption states colour and shape of every object; size and position may be left out, and
then vary from sample to sample. Two-object captions state a relation: left/right put the
objects in the left and right columns of one (unnamed) row, above/below in the top and bottom
rows of one (unnamed) column. ``Spec`` keeps exactly what was stated, for scoring.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lstmq.worker.shapes.world import COLOURS, POSITION_PHRASES, RELATIONS, SIZES, Obj, all_pairs

# relation -> ((row, col) of object 1, (row, col) of object 2); None = the unnamed, shared axis
RELATION_CELLS: dict[str, tuple[tuple[int | None, int | None], tuple[int | None, int | None]]] = {
    "to the left of": ((None, 0), (None, 2)),
    "to the right of": ((None, 2), (None, 0)),
    "above": ((0, None), (2, None)),
    "below": ((2, None), (0, None)),
}


@dataclass(frozen=True)
class ObjSpec:
    """What a caption says about one object (None = not stated)."""

    colour: str
    shape: str
    size: str | None
    row: int | None
    col: int | None


@dataclass(frozen=True)
class Spec:
    objects: tuple[ObjSpec, ...]
    relation: str | None = None  # two-object captions: the shared row/column must agree

    @property
    def unspecified(self) -> tuple[str, ...]:
        """Attributes the caption leaves open ("size", "position"), for diversity scoring."""
        open_ = []
        if any(o.size is None for o in self.objects):
            open_.append("size")
        if any(o.row is None or o.col is None for o in self.objects):
            open_.append("position")
        return tuple(open_)


@dataclass(frozen=True)
class Scene:
    caption: str
    spec: Spec
    objects: tuple[Obj, ...]  # one ground-truth drawing of the caption


def phrase(spec: ObjSpec) -> str:
    words = ["a"] + ([spec.size] if spec.size else []) + [spec.colour, spec.shape]
    return " ".join(words)


def one_object(rng: random.Random, pair: tuple[str, str], p_size: float, p_pos: float) -> Scene:
    size, row, col = rng.choice(list(SIZES)), rng.randrange(3), rng.randrange(3)
    stated_size, stated_pos = rng.random() < p_size, rng.random() < p_pos
    spec = ObjSpec(
        pair[0], pair[1], size if stated_size else None, row if stated_pos else None, col if stated_pos else None
    )
    caption = phrase(spec) + (f" {POSITION_PHRASES[(row, col)]}" if stated_pos else "")
    return Scene(caption, Spec((spec,)), (Obj(pair[0], pair[1], size, row, col),))


def two_objects(rng: random.Random, pairs: tuple[tuple[str, str], tuple[str, str]], p_size: float) -> Scene:
    relation = rng.choice(RELATIONS)
    shared = rng.randrange(3)  # the unnamed row (left/right) or column (above/below)
    specs, objs = [], []
    for (colour, shape), (row, col) in zip(pairs, RELATION_CELLS[relation], strict=True):
        size = rng.choice(list(SIZES))
        specs.append(ObjSpec(colour, shape, size if rng.random() < p_size else None, row, col))
        objs.append(Obj(colour, shape, size, shared if row is None else row, shared if col is None else col))
    caption = f"{phrase(specs[0])} {relation} {phrase(specs[1])}"
    return Scene(caption, Spec(tuple(specs), relation), tuple(objs))


def sample_scene(
    rng: random.Random, n_objects: int, held_out: bool | None = False, p_size: float = 0.5, p_pos: float = 0.5
) -> Scene:
    """One random scene. held_out=False: training pairs only; True: (one of) the objects is a
    held-out colour-shape pair; None: any pair."""
    train, any_pairs = all_pairs(False), all_pairs(None)
    if n_objects == 1:
        pool = all_pairs(True) if held_out else (train if held_out is False else any_pairs)
        return one_object(rng, rng.choice(pool), p_size, p_pos)
    if held_out:
        pairs = [rng.choice(all_pairs(True)), rng.choice(train)]
        rng.shuffle(pairs)
    else:
        pool = train if held_out is False else any_pairs
        pairs = [rng.choice(pool), rng.choice(pool)]
    return two_objects(rng, (pairs[0], pairs[1]), p_size)


def training_scenes(seed: int, p_two: float = 0.5):
    """Endless seeded stream of training scenes (held-out pairs excluded)."""
    rng = random.Random(seed)
    while True:
        yield sample_scene(rng, 2 if rng.random() < p_two else 1, held_out=False)


def vocabulary() -> list[str]:
    """Every word the world's captions use, in a fixed order."""
    words = ["a"] + list(SIZES) + list(COLOURS) + ["circle", "square", "triangle", "diamond"]
    for text in list(POSITION_PHRASES.values()) + list(RELATIONS):
        words += text.split()
    return list(dict.fromkeys(words))


def realise(spec: Spec, rng: random.Random) -> tuple[Obj, ...]:
    """A random ground-truth drawing of ``spec``: open sizes and cells drawn uniformly."""
    shared = rng.randrange(3)
    one = len(spec.objects) == 1
    cell = (rng.randrange(3), rng.randrange(3)) if one else (shared, shared)
    return tuple(
        Obj(
            o.colour,
            o.shape,
            o.size or rng.choice(list(SIZES)),
            cell[0] if o.row is None else o.row,
            cell[1] if o.col is None else o.col,
        )
        for o in spec.objects
    )
