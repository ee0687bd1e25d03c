"""Calibrate an existing classifier artifact: ``lstmq calibrate --model NAME DEV_FILE``.

For artifacts trained before temperatures existed (the shipped ensembles) or calibrated on
other data. The fit is ``calibration.calibrate`` on the model's untempered probabilities
(a stored T is set aside first, so calibrating twice fits the same T). Only config.json
changes: ``architecture.temperature`` (so the version id changes and running workers reload
the model), ``training.calibration`` (what changed, on which file, by which command) and
``metrics.dev.ece``. The weights stay byte-identical, so accuracy does too.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from lstmq.modelstore import locate_model, version_id
from lstmq.worker.ml.artifacts import update_config
from lstmq.worker.ml.classifier.artifact import load_artifact
from lstmq.worker.ml.classifier.calibration import calibrate, held_out_ece
from lstmq.worker.ml.classifier.data import check_labels, read_labelled
from lstmq.worker.ml.classifier.inference import Classifier
from lstmq.worker.ml.classifier.metrics import calibration_report, classification_report
from lstmq.worker.ml.classifier.train import argmax_labels
from lstmq.worker.ml.device import resolve_device


def calibrate_installed(
    name: str,
    dev_file: Path,
    device: str = "auto",
    fields: tuple[str, str] = ("text", "label"),
    fmt: str | None = None,
    command: str = "",
    source: str | None = None,
) -> dict:
    """Fit and store the temperature of the installed classifier ``name`` on ``dev_file``
    (recorded as ``source`` when given: reviews are written to a temporary file first).

    Returns path, versions before/after, the previous temperature, the calibration record
    written to config.json and the dev report of the calibrated model.
    """
    path = locate_model(name)  # ModelNotFound before the dev file is read
    model, tokenizer, config = load_artifact(path)
    dev = read_labelled(dev_file, *fields, fmt)  # InputError on an empty or malformed file
    labels = config["labels"]
    check_labels(dev, labels, name)
    version_before, previous = version_id(path), model.cfg.temperature
    model.cfg = replace(model.cfg, temperature=1.0)  # fit on the raw probabilities
    clf = Classifier(name, version_before, model, tokenizer, labels, config["max_tokens"], resolve_device(device))
    raw = [p.probs for p in clf.predict(dev.texts)]  # read_labelled admits no text predict rejects
    targets = [labels.index(g) for g in dev.labels]
    probs, summary = calibrate(model, raw, targets)
    record = {
        **summary,
        "held_out": held_out_ece(torch.tensor(raw), torch.tensor(targets)),
        "file": source or str(dev_file),
        "rows": len(dev),
        "command": command,
    }
    report = classification_report(dev.labels, argmax_labels(probs, labels), labels)
    report["calibration"] = calibration_report(dev.labels, labels, probs)
    metrics = config.get("metrics", {})
    update_config(
        path,
        architecture=model.cfg.to_dict(),
        training={**config.get("training", {}), "calibration": record},
        metrics={**metrics, "dev": {**metrics.get("dev", {}), "ece": summary["ece_after"]}},
    )
    return {
        "path": str(path),
        "version_before": version_before,
        "version": version_id(path),
        "previous_temperature": previous,
        "calibration": record,
        "report": report,
    }
