"""A training run, from files to an installed artifact: read the data, train a classifier (or
distil a student from a teacher), write the artifact and its MODEL_CARD.md after every member."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from lstmq.errors import InputError
from lstmq.modelstore import valid_name, version_id
from lstmq.readers.records import Fields, Record
from lstmq.readers.sources import read_sources, resolve_sources
from lstmq.worker.ml.classifier.artifact import save_artifact
from lstmq.worker.ml.classifier.card import hardware, render_card
from lstmq.worker.ml.classifier.config import DistillConfig, TrainConfig
from lstmq.worker.ml.classifier.data import Labelled, read_labelled
from lstmq.worker.ml.classifier.distill import agreement, distill_classifier, teacher_probs
from lstmq.worker.ml.classifier.inference import load_classifier
from lstmq.worker.ml.classifier.metrics import classification_report, summary
from lstmq.worker.ml.classifier.train import Progress, TrainResult, argmax_labels, train_classifier
from lstmq.worker.ml.device import resolve_device
from lstmq.worker.ml.weights import check_dtype


def train_and_save(
    name: str,
    train_file: Path,
    dev_file: Path,
    out: Path,
    cfg: TrainConfig,
    device: str,
    fields: tuple[str, str] = ("text", "label"),
    progress: Progress = lambda e: None,
    command: str = "",
    fmt: str | None = None,
) -> dict:
    """Train, write the artifact and its MODEL_CARD.md into ``out``; returns the dev report."""
    _check(name, cfg)
    train, dev = read_labelled(train_file, *fields, fmt), read_labelled(dev_file, *fields, fmt)
    run_device = resolve_device(device)
    base = _run_record(command, (train_file, train), (dev_file, dev), cfg, run_device)
    return train_classifier(train, dev, cfg, run_device, progress, _saver(name, out, cfg, base)).dev_report


def distill_and_save(
    name: str,
    teacher: str,
    files: tuple[Path, Path, Sequence[Path]],
    out: Path,
    cfg: TrainConfig,
    dcfg: DistillConfig,
    device: str,
    fields: tuple[str, str] = ("text", "label"),
    progress: Progress = lambda e: None,
    command: str = "",
    fmt: str | None = None,
) -> dict:
    """``train_and_save`` for a student of the installed model ``teacher``; ``files``: train,
    dev and the extra unlabelled texts. The record adds the teacher and the student's dev agreement."""
    _check(name, cfg)
    dcfg.check()
    train_file, dev_file, extra_files = files
    train, dev = read_labelled(train_file, *fields, fmt), read_labelled(dev_file, *fields, fmt)
    extra = _texts(extra_files, fields[0], fmt)
    run_device = resolve_device(device)
    clf = load_classifier(teacher, device)
    on_dev = teacher_probs(clf, dev.texts)
    base = _run_record(command, (train_file, train), (dev_file, dev), cfg, run_device)
    base["distillation"] = {
        **_teacher_record(clf, on_dev, dev),
        **asdict(dcfg),
        "extra_files": [str(f) for f in extra_files],
        "extra_rows": len(extra),
    }

    def student(result: TrainResult) -> dict:
        return {
            "distillation": {**base["distillation"], "dev_agreement": round(agreement(result.dev_probs, on_dev), 5)}
        }

    save = _saver(name, out, cfg, base, student)
    return distill_classifier(train, dev, extra, clf, cfg, dcfg, run_device, progress, save).dev_report


def _teacher_record(clf, on_dev: list[list[float]], dev: Labelled) -> dict:
    accuracy = classification_report(dev.labels, argmax_labels(on_dev, clf.labels), clf.labels)["accuracy"]
    return {"teacher": clf.name, "teacher_version": clf.version, "teacher_dev_accuracy": round(accuracy, 5)}


def _check(name: str, cfg: TrainConfig) -> None:
    if not valid_name(name):
        raise InputError(f"model name {name!r} must be letters, digits, '.', '_' or '-' (max 64)")
    check_dtype(cfg.weights_dtype)  # before training, not after an hour of it


def _texts(files: Sequence[Path], text_field: str, fmt: str | None) -> list[str]:
    """The usable texts of unlabelled files (a rejected record is skipped: it has no text to learn from)."""
    if not files:
        return []
    items = read_sources(resolve_sources([str(f) for f in files], fmt), Fields(text=text_field))
    return [item.text for item in items if isinstance(item, Record)]


def _run_record(
    command: str, train: tuple[Path, Labelled], dev: tuple[Path, Labelled], cfg: TrainConfig, device
) -> dict:
    """What config.json's ``training`` says about the run before it starts."""
    (train_file, train_rows), (dev_file, dev_rows) = train, dev
    return {
        "command": command,
        "train_file": str(train_file),
        "dev_file": str(dev_file),
        "train_rows": min(len(train_rows), cfg.max_train_rows or len(train_rows)),
        "dev_rows": len(dev_rows),
        "train_counts": train_rows.counts(),
        "dev_counts": dev_rows.counts(),
        "data_fingerprint": train_rows.fingerprint(),
        "hyperparameters": cfg.to_dict(),
        "hardware": hardware(device),
    }


def _saver(
    name: str, out: Path, cfg: TrainConfig, base: dict, more: Callable[[TrainResult], dict] = lambda result: {}
) -> Callable[[TrainResult], None]:
    """Writes the artifact and its card after every ensemble member (a long run has a usable
    model early); ``more``: what else ``training`` records about a result."""

    def save(result: TrainResult) -> None:
        training = {
            **base,
            "seconds": round(result.seconds, 1),
            "member_dev_accuracy": result.member_dev_accuracy,
            "members_trained": len(result.member_dev_accuracy),
            "calibration": result.calibration,
            **more(result),
        }
        extra = {"name": name, "training": training, "metrics": {"dev": summary(result.dev_report)}}
        save_artifact(out, result.model, result.tokenizer, result.labels, cfg.max_tokens, extra, cfg.weights_dtype)
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
        card = render_card(name, version_id(out), config, result.dev_report, result.member_dev_accuracy)
        (out / "MODEL_CARD.md").write_text(card, encoding="utf-8")

    return save
