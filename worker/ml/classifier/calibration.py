"""Temperature scaling: one T fitted on dev, so that a score is a probability a user can threshold.

Guo et al. 2017 ("On Calibration of Modern Neural Networks"): dividing the logits by one T > 0
keeps every argmax (accuracy is unchanged) and, with the T that minimises the dev negative
log-likelihood, removes most of a network's over- or under-confidence. An ensemble's logits are
the log of its mean probabilities (``model.tempered``). The NLL is convex in 1/T, so it has one
minimum on [T_MIN, T_MAX]: a golden-section search on log T finds it, deterministically and
without an optimiser's learning rate.

An ECE measured on the rows T was fitted on flatters it; ``held_out_ece`` also reports a
two-fold estimate (fit on one half, measure on the other) for what a fresh sample would see.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch.nn import functional as F

from lstmq.worker.ml.classifier.metrics import reliability
from lstmq.worker.ml.classifier.model import Ensemble, safe_log, tempered

T_MIN, T_MAX = 0.05, 20.0
SEARCH_STEPS = 48  # each step keeps 0.618 of the interval: log T known to ~1e-9
INVERSE_GOLDEN = (math.sqrt(5) - 1) / 2
DIGITS = 4  # the stored T, rounded: readable in config.json, and what training then evaluates


def nll(log_probs: torch.Tensor, targets: torch.Tensor, temperature: float) -> float:
    """Mean negative log-likelihood of softmax(log_probs / T); log_probs (N, C), targets (N,)."""
    return F.cross_entropy(log_probs / temperature, targets).item()


def fit_temperature(log_probs: torch.Tensor, targets: torch.Tensor) -> float:
    """The T in [T_MIN, T_MAX] that minimises ``nll`` (golden-section search on log T)."""
    lo, hi = math.log(T_MIN), math.log(T_MAX)

    def loss(x: float) -> float:
        return nll(log_probs, targets, math.exp(x))

    a, b = hi - INVERSE_GOLDEN * (hi - lo), lo + INVERSE_GOLDEN * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(SEARCH_STEPS):
        if fa <= fb:  # the minimum lies in [lo, b]
            hi, b, fb = b, a, fa
            a = hi - INVERSE_GOLDEN * (hi - lo)
            fa = loss(a)
        else:  # in [a, hi]
            lo, a, fa = a, b, fb
            b = lo + INVERSE_GOLDEN * (hi - lo)
            fb = loss(b)
    return math.exp((lo + hi) / 2)


def ece(probs: torch.Tensor, targets: torch.Tensor) -> float:
    """Expected calibration error of the top score, (N, C) probabilities (``metrics.reliability``)."""
    confidence, top = probs.max(dim=-1)
    return reliability(confidence.tolist(), (top == targets).tolist())["ece"]


def calibrate(model: Ensemble, probs: list[list[float]], targets: list[int]) -> tuple[list[list[float]], dict]:
    """Fit T on ``model``'s untempered dev ``probs`` and set it on the model (in place).

    Returns the tempered probabilities and what changed: temperature, NLL and ECE before/after.
    """
    p, y = torch.tensor(probs), torch.tensor(targets)
    log_p = safe_log(p)
    t = round(fit_temperature(log_p, y), DIGITS)
    model.cfg = replace(model.cfg, temperature=t)
    after = tempered(p, t)
    summary = {
        "temperature": t,
        "nll_before": round(nll(log_p, y, 1.0), 5),
        "nll_after": round(nll(log_p, y, t), 5),
        "ece_before": round(ece(p, y), 5),
        "ece_after": round(ece(after, y), 5),
    }
    return after.tolist(), summary


def held_out_ece(probs: torch.Tensor, targets: torch.Tensor, seed: int = 0) -> dict | None:
    """Two folds of (N, C) untempered ``probs``: T fitted on one half of the rows (a seeded
    shuffle, so a file sorted or alternating by label splits evenly), ECE measured on the other
    half before (T = 1) and after (NLL too: a proper score, less noisy than binned ECE on a
    few hundred rows); then the halves swap. Returns both folds and their means (None for
    fewer than 2 rows: no halves)."""
    if len(targets) < 2:
        return None
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))
    halves = order[: len(order) // 2], order[len(order) // 2 :]
    log_p = safe_log(probs)
    folds = []
    for fit, test in (halves, halves[::-1]):
        t = round(fit_temperature(log_p[fit], targets[fit]), DIGITS)
        p, lp, y = probs[test], log_p[test], targets[test]
        folds.append(
            {
                "temperature": t,
                "rows": len(test),
                "ece_before": ece(p, y),
                "ece_after": ece(tempered(p, t), y),
                "nll_before": nll(lp, y, 1.0),
                "nll_after": nll(lp, y, t),
            }
        )
    means = {k: round(sum(f[k] for f in folds) / 2, 5) for k in ("ece_before", "ece_after", "nll_before", "nll_after")}
    return {"folds": [{k: round(v, 5) for k, v in f.items()} for f in folds], **means}
