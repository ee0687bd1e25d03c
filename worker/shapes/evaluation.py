"""The evaluation behind ``lstmq eval-images``: fixed caption sets, oracle scores, diversity.

Caption sets are drawn from the world with a fixed seed, so every run scores the same
captions: one-object and two-object captions over training colour-shape pairs, and captions
with a held-out pair (half one-object, half two-object). ``generate`` is any function
``(captions, seed) -> images`` (PIL images or (64, 64, 3) uint8 arrays); no torch here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from lstmq.worker.shapes.captions import Scene, Spec, realise, sample_scene
from lstmq.worker.shapes.oracle import parse
from lstmq.worker.shapes.scoring import Tally, score
from lstmq.worker.shapes.world import SIZES, render

Generate = Callable[[Sequence[str], int], Sequence]
EVAL_SEED = 20160201  # alignDRAW's ICLR year and month: any fixed number would do
DIVERSITY_SAMPLES = 8  # images per caption when measuring how open attributes vary
OPEN_VALUES = {"size": len(SIZES), "position": 9}  # how many values an open attribute can take


def eval_sets(n: int, seed: int = EVAL_SEED) -> dict[str, list[Scene]]:
    rng = random.Random(seed)
    return {
        "one_object": [sample_scene(rng, 1, held_out=False) for _ in range(n)],
        "two_object": [sample_scene(rng, 2, held_out=False) for _ in range(n)],
        "held_out": [sample_scene(rng, 1 + i % 2, held_out=True) for i in range(n)],
    }


def score_set(generate: Generate, scenes: list[Scene], seed: int) -> dict:
    tally = Tally()
    images = generate([s.caption for s in scenes], seed)
    for scene, image in zip(scenes, images, strict=True):
        score(scene.spec, parse(image), tally)
    rates = tally.rates()
    return {"n": len(scenes), "exact": rates.pop("exact"), "attributes": rates}


def open_value(spec: Spec, attribute: str, image) -> object:
    found = parse(image)
    if len(found) != 1:
        return None  # not one clean object: counts as no value
    return found[0].size if attribute == "size" else (found[0].row, found[0].col)


def diversity(generate: Generate, scenes: list[Scene], seed: int, k: int = DIVERSITY_SAMPLES) -> dict:
    """Per open attribute of one-object captions: mean distinct values over k samples,
    against what uniform sampling (the world itself) gives on average."""
    report = {}
    for attribute, m in OPEN_VALUES.items():
        chosen = [s for s in scenes if attribute in s.spec.unspecified][:25]
        images = generate([s.caption for s in chosen for _ in range(k)], seed)
        distinct = [
            len({open_value(s.spec, attribute, im) for im in images[i * k : (i + 1) * k]} - {None})
            for i, s in enumerate(chosen)
        ]
        expected = m * (1 - (1 - 1 / m) ** k)
        mean = sum(distinct) / max(1, len(distinct))
        report[attribute] = {
            "captions": len(chosen),
            "samples": k,
            "mean_distinct": round(mean, 3),
            "world_expected": round(expected, 3),
            "ratio": round(mean / expected, 3),
        }
    return report


def evaluate(generate: Generate, n: int = 200, seed: int = EVAL_SEED) -> dict:
    sets = eval_sets(n, seed)
    report = {name: score_set(generate, scenes, seed + i) for i, (name, scenes) in enumerate(sets.items())}
    report["diversity"] = diversity(generate, sets["one_object"], seed)
    return report


def ground_truth_generator(specs_by_caption: dict[str, Spec]) -> Generate:
    """Renders each caption exactly (open attributes drawn at random): the oracle's own check."""

    def generate(captions: Sequence[str], seed: int) -> list:
        rng = random.Random(seed)
        return [render(realise(specs_by_caption[c], rng)) for c in captions]

    return generate
