"""Choosing generation settings of a trained world generator, on *validation* captions.

- temperature: prior noise scaled below 1 lands less often between the modes the posterior
  learned (where a decoder draws blends), at some cost in variety;
- mask sharpness: mask logits multiplied by k > 1 turn half-transparent objects (dim, so off
  colour) into crisp, fully coloured ones, and fade faint ghosts out;
- redrawing empty drawings: some prior noise decodes to a (nearly) empty canvas, most often
  when the caption leaves the position open; such a drawing is redrawn with fresh seeded noise
  (at most ``REDRAWS`` times) when its masks cover fewer pixels than a threshold chosen here.

The choice uses a caption set drawn with a different seed from the evaluation set, and
requires the open attributes to keep varying.
"""

from __future__ import annotations

from pathlib import Path

from lstmq.worker.ml.artifacts import update_config
from lstmq.worker.ml.generator.inference import from_artifact
from lstmq.worker.shapes.evaluation import EVAL_SEED, evaluate

VALIDATION_SEED = EVAL_SEED + 1
TEMPERATURES = (1.0, 0.8)
SHARPNESS = (1.0, 3.0, 10.0)
MIN_COVER_PIXELS = (40, 80)  # tried against not redrawing; the smallest world object covers ~98 pixels
REDRAWS = 3
MIN_DIVERSITY_RATIO = 0.75  # open attributes must still vary about as much as in the world


def mean_exact(report: dict) -> float:
    return sum(report[s]["exact"] for s in ("one_object", "two_object", "held_out")) / 3


def calibrate_generation(
    path: Path, n: int = 150, temperatures=TEMPERATURES, sharpness=SHARPNESS, min_cover=MIN_COVER_PIXELS
) -> tuple:
    """Pick (temperature, sharpness), then the redraw threshold, each by the best mean exact
    match among settings that keep variety; store them in the artifact's architecture (so they
    are part of the version id)."""
    generator = from_artifact(path)
    cfg = generator.model.cfg
    if cfg.latent == "categorical":
        temperatures = (1.0,)  # codes are drawn uniformly: nothing to scale
    scores: dict[str, dict] = {}

    def trial(label: str, temperature: float, mask_sharpness: float, cover: int) -> dict:
        generator.temperature, cfg.mask_sharpness = temperature, mask_sharpness
        cfg.redraws, cfg.min_cover_pixels = (REDRAWS, cover) if cover else (0, 0)
        report = evaluate(generator.images, n=n, seed=VALIDATION_SEED)
        varied = min(d["ratio"] for d in report["diversity"].values()) >= MIN_DIVERSITY_RATIO
        scores[label] = {"mean_exact": round(mean_exact(report), 4), "varied": varied}
        return scores[label]

    def best_of(options: dict) -> object:
        eligible = [key for key, score in options.items() if score["varied"]] or [next(iter(options))]
        return max(eligible, key=lambda key: options[key]["mean_exact"])

    t, k = best_of({(t, k): trial(f"temperature {t}, sharpness {k}", t, k, 0) for t in temperatures for k in sharpness})
    base = f"temperature {t}, sharpness {k}"
    redraw = {c: trial(f"{base}, redraw below {c} px", t, k, c) for c in min_cover}
    cover = best_of(redraw) if redraw else 0
    if cover and redraw[cover]["mean_exact"] <= scores[base]["mean_exact"]:
        cover = 0  # redrawing did not help on the validation captions
    architecture = {
        **cfg.to_dict(),
        "temperature": t,
        "mask_sharpness": k,
        "redraws": REDRAWS if cover else 0,
        "min_cover_pixels": cover,
    }
    update_config(
        path, architecture=architecture, calibration={"validation_seed": VALIDATION_SEED, "n": n, "scores": scores}
    )
    return (t, k, cover), scores
