"""Merge classifier artifacts trained separately (e.g. with different seeds, in parallel) into one ensemble.

The sources must share the tokenizer (byte-identical tokenizer.json: the same data and
tokenizer options give the same vocabulary), the labels and the architecture apart from
``members`` and the temperature. The merged ensemble is evaluated and calibrated on dev (its
sources' temperatures were fitted to them alone) and written with a card that lists every
command involved::

    python -m lstmq.worker.ml.classifier.merge --out lstmq/models/news --dev DEV A_DIR B_DIR
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import click
import torch

from lstmq.errors import ArtifactError, InputError, LstmqError
from lstmq.modelstore import version_id
from lstmq.worker.ml.classifier.artifact import load_artifact, save_artifact
from lstmq.worker.ml.classifier.calibration import calibrate
from lstmq.worker.ml.classifier.card import render_card
from lstmq.worker.ml.classifier.data import Labelled, read_labelled
from lstmq.worker.ml.classifier.metrics import calibration_report, classification_report, summary
from lstmq.worker.ml.classifier.model import Ensemble
from lstmq.worker.ml.classifier.train import argmax_labels, encode_ids, predict_probs
from lstmq.worker.ml.tokenizer import prune_vocab
from lstmq.worker.ml.weights import check_dtype, round_to_dtype


def _compatible(paths: list[Path]) -> list[tuple]:
    loaded = [load_artifact(p) for p in paths]
    first_tok = (paths[0] / "tokenizer.json").read_bytes()
    base = _shape(loaded[0][2]["architecture"])
    for path, (_, _, config) in zip(paths, loaded, strict=True):
        if (path / "tokenizer.json").read_bytes() != first_tok:
            raise ArtifactError(f"{path}: tokenizer differs from {paths[0]}'s; cannot merge")
        if _shape(config["architecture"]) != base or config["labels"] != loaded[0][2]["labels"]:
            raise ArtifactError(f"{path}: architecture or labels differ from {paths[0]}'s; cannot merge")
    return loaded


def _shape(architecture: dict) -> dict:
    """What members must share to be merged: all but their number and their temperature."""
    return {**architecture, "members": 0, "temperature": None}


def merge(
    out: Path,
    sources: list[Path],
    dev_file: Path,
    command: str,
    weights_dtype: str | None = None,
    vocab_size: int | None = None,
    calibrated: bool = True,
) -> dict:
    loaded = _compatible(sources)
    members = [m for model, _, _ in loaded for m in model.members]
    model0, tokenizer, config0 = loaded[0]
    arch = replace(model0.cfg, members=len(members), temperature=1.0)
    if vocab_size is not None and vocab_size < arch.vocab_size:
        tokenizer, arch = _cut(tokenizer, vocab_size), replace(arch, vocab_size=vocab_size)
    ensemble = Ensemble(arch)
    for slot, member in zip(ensemble.members, members, strict=True):
        state = member.state_dict()
        state["embed.weight"] = state["embed.weight"][: arch.vocab_size]  # the kept words' rows
        slot.load_state_dict(state)
    dtype = weights_dtype or config0.get("weights_dtype", "float16")
    round_to_dtype(ensemble, dtype)  # dev metrics of the weights as stored
    report, calibration = _evaluate(ensemble, tokenizer, config0, read_labelled(dev_file), calibrated)
    trainings = [cfg["training"] for _, _, cfg in loaded]
    accs = [a for t in trainings for a in t["member_dev_accuracy"]]
    training = {
        **trainings[0],
        "command": "\n".join([t["command"] for t in trainings] + [command]),
        "seconds": sum(t["seconds"] for t in trainings),
        "member_dev_accuracy": accs,
        "merged_from": [str(s) for s in sources],
        "calibration": calibration,
    }
    extra = {"name": config0.get("name", out.name), "training": training, "metrics": {"dev": summary(report)}}
    save_artifact(out, ensemble, tokenizer, config0["labels"], config0["max_tokens"], extra, dtype)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    (out / "MODEL_CARD.md").write_text(
        render_card(extra["name"], version_id(out), config, report, accs), encoding="utf-8"
    )
    return report


def _evaluate(ensemble: Ensemble, tokenizer, config: dict, dev: Labelled, calibrated: bool) -> tuple[dict, dict | None]:
    """The dev report, after fitting the ensemble's temperature on dev when ``calibrated``."""
    labels = config["labels"]
    unknown = sorted(set(dev.labels) - set(labels))
    if unknown:
        raise InputError(f"dev has labels the models do not know: {unknown}")
    probs = predict_probs(ensemble.eval(), encode_ids(tokenizer, dev.texts, config["max_tokens"]), torch.device("cpu"))
    calibration = None
    if calibrated:
        probs, calibration = calibrate(ensemble, probs, [labels.index(g) for g in dev.labels])
    report = classification_report(dev.labels, argmax_labels(probs, labels), labels)
    report["calibration"] = calibration_report(dev.labels, labels, probs)
    return report, calibration


def _cut(tokenizer, size: int):
    try:
        return prune_vocab(tokenizer, size)
    except ValueError as exc:
        raise InputError(f"--vocab-size: {exc}") from None


@click.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--dev", "dev_file", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option(
    "--weights-dtype",
    help="Stored precision of the ensemble (default: the first source's): float16 | float32 | int8-embeddings | int8.",
)
@click.option(
    "--vocab-size",
    type=click.IntRange(min=3),
    help="Keep only the N most frequent words of a "
    "word-level vocabulary (the others read as [UNK]); shrinks every member's embedding table.",
)
@click.option("--calibrate/--no-calibrate", default=True, show_default=True, help="fit a temperature on dev")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False))
def main(out, dev_file, weights_dtype, vocab_size, calibrate, sources):
    """Merge classifier artifacts SOURCES into one ensemble at OUT (evaluated on DEV)."""
    command = "python -m lstmq.worker.ml.classifier.merge " + shlex.join(sys.argv[1:])
    if weights_dtype:
        check_dtype(weights_dtype)
    report = merge(out, list(sources), dev_file, command, weights_dtype, vocab_size, calibrate)
    click.echo(f"merged {len(sources)} artifacts: dev accuracy {report['accuracy']:.4f} -> {out}")


if __name__ == "__main__":
    try:
        main(standalone_mode=False)
    except LstmqError as exc:
        raise SystemExit(f"error: {exc}") from None
