"""Training: tokenizer from the training texts, then each ensemble member with early stopping on
dev, then one temperature fitted on dev (``calibration.py``).

What a member learns from is an ``Objective``: the gold labels here (``hard_targets``), a
teacher's probabilities in ``distill.py``.

Seeded and reproducible for a given device and thread count: Python's and torch's generators
are seeded from ``seed`` (member ``m`` uses ``seed + m``) and batches come from a seeded
shuffle. Training batches are length-bucketed (see ``batching.shuffled_buckets``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from lstmq.errors import InputError
from lstmq.worker.ml.batching import pad, plan_batches, scatter, shuffled_buckets
from lstmq.worker.ml.classifier.calibration import calibrate
from lstmq.worker.ml.classifier.config import TrainConfig
from lstmq.worker.ml.classifier.data import Labelled
from lstmq.worker.ml.classifier.metrics import calibration_report, classification_report
from lstmq.worker.ml.classifier.model import ClassifierConfig, Ensemble, LSTMClassifier
from lstmq.worker.ml.tokenizer import UNK_ID, encode_batch, train_tokenizer
from lstmq.worker.ml.weights import round_to_dtype


@dataclass
class TrainResult:
    model: Ensemble
    tokenizer: object
    labels: list[str]
    dev_report: dict
    member_dev_accuracy: list[float]
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    calibration: dict | None = None  # temperature, dev NLL and ECE before/after; None: not calibrated
    dev_probs: list = field(default_factory=list)  # the model's dev probabilities, dev order


@dataclass
class Prepared:
    """The encoded data and the architecture; labels sorted, ``*_y`` their indices."""

    labels: list[str]
    tokenizer: object
    arch: ClassifierConfig
    train_ids: list[list[int]]
    train_y: list[int]
    dev_ids: list[list[int]]
    dev_y: list[int]


Progress = Callable[[dict], None]  # receives {"event": "step"|"eval"|"member", ...}
Objective = Callable[[torch.Tensor, list[int]], torch.Tensor]  # (logits (B, C), training row indices) -> loss
UNLABELLED = -1  # the gold index of a training text without a label (distillation's extra texts)


def encode_ids(tokenizer, texts: list[str], max_tokens: int) -> list[list[int]]:
    return [e.ids or [UNK_ID] for e in encode_batch(tokenizer, texts, max_tokens)]


def predict_probs(model: nn.Module, ids: list[list[int]], device: torch.device, batch: int = 256) -> list:
    """Probabilities (lists) per sequence, input order kept."""
    batches = plan_batches([len(x) for x in ids], batch)
    outs = []
    model.eval()
    with torch.inference_mode():
        for b in batches:
            seqs = [ids[i] for i in b]
            logits = model(torch.tensor(pad(seqs), device=device), torch.tensor([len(s) for s in seqs]))
            probs = logits if isinstance(model, Ensemble) else logits.softmax(-1)
            outs.append(probs.float().cpu().tolist())
    return scatter(batches, outs, len(ids))


def argmax_labels(probs: list, labels: list[str]) -> list[str]:
    return [labels[max(range(len(p)), key=p.__getitem__)] for p in probs]


def _schedule(optimizer, total: int, warmup: float):
    warm = max(1, int(total * warmup))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _word_dropout(batch: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    if p <= 0:
        return batch
    drop = (torch.rand(batch.shape, generator=gen) < p) & (batch != 0)
    return batch.masked_fill(drop.to(batch.device), UNK_ID)


def train_member(
    prep: Prepared,
    cfg: TrainConfig,
    objective: Objective,
    member: int,
    device: torch.device,
    progress: Progress,
    deadline: float | None,
) -> tuple[LSTMClassifier, float, list[dict], bool]:
    """One classifier, early-stopped on dev accuracy -> (best model, best acc, history, finished).

    ``finished`` is False when ``deadline`` (a perf_counter time) cut training short.
    """
    train_ids = prep.train_ids
    seed = cfg.seed + member
    torch.manual_seed(seed)
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    model = LSTMClassifier(prep.arch).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_ids) / cfg.batch_size)
    scheduler = _schedule(optimizer, steps_per_epoch * cfg.epochs, cfg.warmup)
    evals = eval_steps(steps_per_epoch, cfg.evals_per_epoch)
    lengths = [len(x) for x in train_ids]
    tracker = _Best(cfg.patience)
    for epoch in range(cfg.epochs):
        progress({"event": "epoch", "member": member, "epoch": epoch, "steps": steps_per_epoch})
        for step, idx in enumerate(shuffled_buckets(lengths, cfg.batch_size, rng), start=1):
            seqs = [train_ids[i] for i in idx]
            model.train()
            batch = _word_dropout(torch.tensor(pad(seqs)), cfg.word_dropout, gen).to(device)
            loss = objective(model(batch, torch.tensor([len(s) for s in seqs])), idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            optimizer.step()
            scheduler.step()
            progress({"event": "step", "loss": loss.item()})
            late = deadline is not None and time.perf_counter() > deadline
            if step in evals or late:
                acc = _accuracy(model, prep.dev_ids, prep.dev_y, device)
                tracker.update(model, acc, {"member": member, "epoch": round(epoch + step / steps_per_epoch, 3)})
                progress({"event": "eval", "dev_accuracy": acc, "best": tracker.acc})
            if tracker.stale >= cfg.patience or late:
                break
        if tracker.stale >= cfg.patience or late:
            break
    model.load_state_dict(tracker.state)
    return model.eval(), tracker.acc, tracker.history, not late


def eval_steps(steps_per_epoch: int, evals_per_epoch: int) -> set[int]:
    """The steps of an epoch after which dev is evaluated: evenly spaced, the last step always,
    never two in a row (with 417 steps and 2 evaluations, steps // evals gave 208, 416 and 417:
    the extra evaluation counted as one without improvement and stopped training early)."""
    count = min(evals_per_epoch, steps_per_epoch)
    return {max(1, round(k * steps_per_epoch / count)) for k in range(1, count + 1)}


def hard_targets(train_y: list[int], num_labels: int, cfg: TrainConfig, device: torch.device) -> Objective:
    """Cross-entropy with the gold labels (class weights, label smoothing); rows without one count nowhere."""
    labelled = [y for y in train_y if y != UNLABELLED]
    loss_fn = nn.CrossEntropyLoss(
        weight=class_weights(labelled, num_labels, cfg.class_weight, device),
        label_smoothing=cfg.label_smoothing,
        ignore_index=UNLABELLED,
    )
    gold = torch.tensor(train_y)

    def objective(logits: torch.Tensor, idx: list[int]) -> torch.Tensor:
        target = gold[idx]
        if bool((target == UNLABELLED).all()):
            return logits.sum() * 0.0  # the mean over no rows would be NaN
        return loss_fn(logits, target.to(device))

    return objective


def class_weights(y: list[int], num_labels: int, kind: str, device: torch.device) -> torch.Tensor | None:
    """``balanced``: n / (classes * count) per class, so every class weighs as much in the loss."""
    if kind == "none":
        return None
    counts = torch.bincount(torch.tensor(y), minlength=num_labels).clamp(min=1).float()
    return (len(y) / (num_labels * counts)).to(device)


class _Best:
    """Early stopping: keeps the best weights and counts evaluations without improvement."""

    def __init__(self, patience: int):
        self.patience, self.acc, self.state, self.stale, self.history = patience, -1.0, None, 0, []

    def update(self, model: nn.Module, acc: float, where: dict) -> None:
        self.history.append({**where, "dev_accuracy": acc})
        if acc > self.acc:
            self.acc, self.stale = acc, 0
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.stale += 1


def _accuracy(model, ids, y, device) -> float:
    probs = predict_probs(model, ids, device)
    return sum(1 for p, g in zip(probs, y, strict=True) if max(range(len(p)), key=p.__getitem__) == g) / len(y)


def sampled(train: Labelled, cfg: TrainConfig) -> Labelled:
    """``cfg.max_train_rows`` rows of ``train`` (seeded, in file order), or all of them."""
    if not cfg.max_train_rows or cfg.max_train_rows >= len(train):
        return train
    keep = sorted(random.Random(cfg.seed).sample(range(len(train)), cfg.max_train_rows))
    return Labelled([train.texts[i] for i in keep], [train.labels[i] for i in keep], train.source)


def prepare(train: Labelled, dev: Labelled, cfg: TrainConfig) -> Prepared:
    """Labels, a tokenizer built from the training texts, the architecture and the encoded data."""
    labels = sorted(set(train.labels))
    unknown = sorted(set(dev.labels) - set(labels))
    if len(labels) < 2 or unknown:
        raise InputError(
            f"need >= 2 training labels covering dev; dev has unseen labels {unknown}"
            if unknown
            else "training data needs at least 2 distinct labels"
        )
    index = {label: i for i, label in enumerate(labels)}
    tokenizer = train_tokenizer(train.texts, cfg.tokenizer, cfg.vocab_size, cfg.min_frequency)
    train_ids, dev_ids = (encode_ids(tokenizer, d.texts, cfg.max_tokens) for d in (train, dev))
    arch = ClassifierConfig(
        vocab_size=tokenizer.get_vocab_size(),
        num_labels=len(labels),
        embed_dim=cfg.embed_dim,
        hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout,
        pooling=cfg.pooling,
        members=cfg.members,
    )
    train_y, dev_y = ([index[x] for x in d.labels] for d in (train, dev))
    return Prepared(labels, tokenizer, arch, train_ids, train_y, dev_ids, dev_y)


def _assemble(prep: Prepared, members: list[LSTMClassifier], cfg: TrainConfig, device) -> TrainResult:
    """The finished members as one Ensemble, rounded to the stored dtype and calibrated on dev,
    with its dev report (the temperature changes no argmax: the report's accuracy is the same)."""
    ensemble = Ensemble(replace(prep.arch, members=len(members)))
    for slot, member in zip(ensemble.members, members, strict=True):
        slot.load_state_dict(member.state_dict())
    round_to_dtype(ensemble, cfg.weights_dtype)
    ensemble = ensemble.to(device).eval()
    probs, calibration = predict_probs(ensemble, prep.dev_ids, device), None
    if cfg.calibrate:
        probs, calibration = calibrate(ensemble, probs, prep.dev_y)
    gold = [prep.labels[y] for y in prep.dev_y]
    report = classification_report(gold, argmax_labels(probs, prep.labels), prep.labels)
    report["calibration"] = calibration_report(gold, prep.labels, probs)
    return TrainResult(
        ensemble.cpu(), prep.tokenizer, prep.labels, report, [], calibration=calibration, dev_probs=probs
    )


def train_classifier(
    train: Labelled,
    dev: Labelled,
    cfg: TrainConfig,
    device: torch.device,
    progress: Progress = lambda event: None,
    on_member: Callable[[TrainResult], None] = lambda result: None,
) -> TrainResult:
    """Train ``cfg.members`` classifiers; ``on_member`` gets the ensemble so far after each one.

    With ``cfg.max_minutes``, training stops at that wall-clock budget: a first member keeps its
    best weights so far; a later unfinished member is dropped (it would only dilute the ensemble).
    """
    started = time.perf_counter()
    prep = prepare(sampled(train, cfg), dev, cfg)
    objective = hard_targets(prep.train_y, prep.arch.num_labels, cfg, device)
    return train_members(prep, objective, cfg, device, progress, on_member, started)


def train_members(
    prep: Prepared,
    objective: Objective,
    cfg: TrainConfig,
    device: torch.device,
    progress: Progress,
    on_member: Callable[[TrainResult], None],
    started: float,
) -> TrainResult:
    """``train_classifier``'s members loop, for any objective; ``started``: when the run began
    (perf_counter), for ``cfg.max_minutes`` and the recorded seconds."""
    deadline = started + cfg.max_minutes * 60 if cfg.max_minutes else None
    members, accs, history, result = [], [], [], None
    for m in range(cfg.members):
        model, acc, hist, finished = train_member(prep, cfg, objective, m, device, progress, deadline)
        if not finished and members:
            break
        members.append(model)
        accs.append(acc)
        history += hist
        result = _assemble(prep, members, cfg, device)
        result.member_dev_accuracy, result.history = list(accs), list(history)
        result.seconds = time.perf_counter() - started
        on_member(result)
        if not finished:
            break
    return result
