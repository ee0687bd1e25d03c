"""Choosing the sampling temperature of a trained world generator, on *validation* captions.

Prior noise scaled below 1 lands less often between the modes the posterior learned (where a
decoder draws blends), at some cost in variety. The choice uses a caption set drawn with a
different seed from the evaluation set, and requires the open attributes to keep varying.
"""

from __future__ import annotations

from pathlib import Path

from worker.ml.artifact import update_config
from worker.ml.generator_inference import from_artifact
from worker.shapes.evaluation import EVAL_SEED, evaluate

VALIDATION_SEED = EVAL_SEED + 1
TEMPERATURES = (1.0, 0.85, 0.7, 0.55)
MIN_DIVERSITY_RATIO = 0.75  # open attributes must still vary about as much as in the world


def mean_exact(report: dict) -> float:
    return sum(report[s]["exact"] for s in ("one_object", "two_object", "held_out")) / 3


def calibrate_temperature(path: Path, n: int = 200, temperatures=TEMPERATURES) -> tuple[float, dict]:
    """Pick the temperature with the best mean exact match among those that keep variety;
    store it in the artifact's architecture (so it is part of the version id)."""
    generator = from_artifact(path)
    scores = {}
    for t in temperatures:
        generator.temperature = t
        report = evaluate(generator.images, n=n, seed=VALIDATION_SEED)
        varied = min(d["ratio"] for d in report["diversity"].values()) >= MIN_DIVERSITY_RATIO
        scores[t] = {"mean_exact": round(mean_exact(report), 4), "varied": varied}
    eligible = [t for t in temperatures if scores[t]["varied"]] or [1.0]
    best = max(eligible, key=lambda t: scores[t]["mean_exact"])
    architecture = {**generator.model.cfg.to_dict(), "temperature": best}
    update_config(path, architecture=architecture, calibration={"validation_seed": VALIDATION_SEED, "n": n,
                                                                "scores": {str(k): v for k, v in scores.items()}})
    return best, scores
