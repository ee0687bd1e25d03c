"""Distillation: one student classifier learns a teacher's probabilities (Hinton et al. 2015).

The teacher (e.g. a shipped ensemble) runs once, batched, over the training texts and any extra
unlabelled texts; its probabilities softened by T are the student's targets::

    loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, gold)

The KL term counts on every row, the cross-entropy only on rows with a gold label (extra texts
have none). T^2 keeps the soft term's gradients at the hard term's scale whatever T is. The
student gets its own tokenizer, built from the labelled training texts as ``train classifier``
builds it, and is early-stopped on dev accuracy and calibrated like any classifier.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import torch
from torch.nn import functional as F

from lstmq.errors import InputError
from lstmq.worker.ml.classifier.config import DistillConfig, TrainConfig
from lstmq.worker.ml.classifier.data import Labelled
from lstmq.worker.ml.classifier.inference import Classifier
from lstmq.worker.ml.classifier.model import tempered
from lstmq.worker.ml.classifier.train import (
    UNLABELLED,
    Objective,
    Progress,
    TrainResult,
    encode_ids,
    hard_targets,
    prepare,
    sampled,
    train_members,
)


def distill_loss(logits: torch.Tensor, soft: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(soft || softmax(logits / T)), mean over rows; logits (B, C), soft (B, C) the
    teacher's tempered probabilities."""
    log_student = F.log_softmax(logits / temperature, dim=-1)
    return F.kl_div(log_student, soft, reduction="batchmean") * temperature**2


def soft_targets(teacher_probs: torch.Tensor, hard: Objective, dcfg: DistillConfig, device) -> Objective:
    """``alpha`` parts the teacher (``teacher_probs`` (N, C): one row per training text), the rest ``hard``."""
    soft = tempered(teacher_probs, dcfg.temperature)

    def objective(logits: torch.Tensor, idx: list[int]) -> torch.Tensor:
        kl = distill_loss(logits, soft[idx].to(device), dcfg.temperature)
        return dcfg.alpha * kl + (1 - dcfg.alpha) * hard(logits, idx)

    return objective


def teacher_probs(teacher: Classifier, texts: list[str]) -> list[list[float]]:
    """The teacher's probabilities per text (``Classifier.predict`` batches them), labels order."""
    preds = teacher.predict(texts)
    bad = next((p.error for p in preds if p.probs is None), None)
    if bad:
        raise InputError(f"teacher {teacher.name!r} cannot score a text: {bad}")
    return [p.probs for p in preds]


def agreement(a: list[list[float]], b: list[list[float]]) -> float:
    """Fraction of rows where two models' probabilities have the same argmax."""
    same = sum(
        max(range(len(p)), key=p.__getitem__) == max(range(len(q)), key=q.__getitem__)
        for p, q in zip(a, b, strict=True)
    )
    return same / len(a)


def distill_classifier(
    train: Labelled,
    dev: Labelled,
    extra: list[str],
    teacher: Classifier,
    cfg: TrainConfig,
    dcfg: DistillConfig,
    device: torch.device,
    progress: Progress = lambda event: None,
    on_member: Callable[[TrainResult], None] = lambda result: None,
) -> TrainResult:
    """Train ``cfg.members`` students (one, usually) on ``teacher``'s probabilities for
    ``train``'s texts and the ``extra`` ones, and on ``train``'s labels."""
    dcfg.check()
    started = time.perf_counter()
    train = sampled(train, cfg)
    prep = prepare(train, dev, cfg)
    if teacher.labels != prep.labels:
        raise InputError(f"teacher {teacher.name!r} has labels {teacher.labels}; the training data has {prep.labels}")
    prep = replace(
        prep,
        train_ids=prep.train_ids + encode_ids(prep.tokenizer, extra, cfg.max_tokens),
        train_y=prep.train_y + [UNLABELLED] * len(extra),
    )
    probs = torch.tensor(teacher_probs(teacher, train.texts + extra))
    hard = hard_targets(prep.train_y, prep.arch.num_labels, cfg, device)
    return train_members(prep, soft_targets(probs, hard, dcfg, device), cfg, device, progress, on_member, started)
