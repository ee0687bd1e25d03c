"""Choosing generation settings of a trained world generator, on *validation* captions.

- temperature: prior noise scaled below 1 lands less often between the modes the posterior
  learned (where a decoder draws blends), at some cost in variety;
- mask sharpness: mask logits multiplied by k > 1 turn half-transparent objects (dim, so off
  colour) into crisp, fully coloured ones, and fade faint ghosts out.

The choice uses a caption set drawn with a different seed from the evaluation set, and
requires the open attributes to keep varying.
"""

from __future__ import annotations

from pathlib import Path

from worker.ml.artifact import update_config
from worker.ml.generator_inference import from_artifact
from worker.shapes.evaluation import EVAL_SEED, evaluate

VALIDATION_SEED = EVAL_SEED + 1
TEMPERATURES = (1.0, 0.8)
SHARPNESS = (1.0, 3.0, 10.0)
MIN_DIVERSITY_RATIO = 0.75  # open attributes must still vary about as much as in the world


def mean_exact(report: dict) -> float:
    return sum(report[s]["exact"] for s in ("one_object", "two_object", "held_out")) / 3


def calibrate_generation(path: Path, n: int = 150, temperatures=TEMPERATURES, sharpness=SHARPNESS) -> tuple:
    """Pick (temperature, sharpness) with the best mean exact match among settings that keep
    variety; store them in the artifact's architecture (so they are part of the version id)."""
    generator = from_artifact(path)
    if generator.model.cfg.latent == "categorical":
        temperatures = (1.0,)  # codes are drawn uniformly: nothing to scale
    scores = {}
    for t in temperatures:
        for k in sharpness:
            generator.temperature, generator.model.cfg.mask_sharpness = t, k
            report = evaluate(generator.images, n=n, seed=VALIDATION_SEED)
            varied = min(d["ratio"] for d in report["diversity"].values()) >= MIN_DIVERSITY_RATIO
            scores[(t, k)] = {"mean_exact": round(mean_exact(report), 4), "varied": varied}
    eligible = [key for key in scores if scores[key]["varied"]] or [(1.0, 1.0)]
    best = max(eligible, key=lambda key: scores[key]["mean_exact"])
    architecture = {**generator.model.cfg.to_dict(), "temperature": best[0], "mask_sharpness": best[1]}
    update_config(path, architecture=architecture, calibration={
        "validation_seed": VALIDATION_SEED, "n": n,
        "scores": {f"temperature {t}, sharpness {k}": v for (t, k), v in scores.items()}})
    return best, scores
