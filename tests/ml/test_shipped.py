"""The three shipped models: present, small, loadable, calibrated, and their recorded dev metrics
(accuracy and expected calibration error) reproduce."""

from __future__ import annotations

import gzip
import json

import pytest
import torch

from lstmq.modelstore import check_artifact, version_id
from lstmq.settings import SHIPPED_MODEL_DIR
from lstmq.worker.ml.classifier.artifact import load_artifact
from lstmq.worker.ml.classifier.inference import Classifier
from lstmq.worker.ml.classifier.metrics import calibration_report, classification_report

SHIPPED = {
    "news": ("ag_news", ["Business", "Sci/Tech", "Sports", "World"]),
    "sentiment": ("sst2", ["negative", "positive"]),
    "spam": ("sms_spam", ["ham", "spam"]),
}
MAX_ARTIFACT_BYTES = 15_000_000  # "15 MB", read as strictly as it can be


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_is_a_small_valid_artifact_with_a_card(name):
    path = SHIPPED_MODEL_DIR / name
    config = check_artifact(path)
    assert config["labels"] == SHIPPED[name][1]
    assert sum(f.stat().st_size for f in path.iterdir()) <= MAX_ARTIFACT_BYTES
    card = (path / "MODEL_CARD.md").read_text()
    command = config["training"]["command"]
    assert command in card and command.startswith(("lstmq train classifier", "lstmq train distill"))
    assert f"Version id: `{version_id(path)}`" in card  # the card describes these files, not earlier ones
    if command.startswith("lstmq train distill"):  # a student: the card names its teacher and how close it came
        distillation = config["training"]["distillation"]
        assert f"version `{distillation['teacher_version']}`" in card
        assert f"Agreement with the teacher on dev: **{distillation['dev_agreement']:.4f}**" in card


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_is_calibrated_on_its_dev_split_and_its_card_says_how(name):
    """`lstmq calibrate` on the card's dev file stored the temperature the card and config.json record."""
    path = SHIPPED_MODEL_DIR / name
    config = check_artifact(path)
    calibration = config["training"]["calibration"]
    assert config["architecture"]["temperature"] == calibration["temperature"]
    assert (
        calibration["file"] == config["training"]["dev_file"] and calibration["rows"] == config["training"]["dev_rows"]
    )
    assert calibration["command"] == f"lstmq calibrate --model {name} {calibration['file']} --device cpu --threads 1"
    assert config["metrics"]["dev"]["ece"] == calibration["ece_after"]
    card = (path / "MODEL_CARD.md").read_text()
    assert calibration["command"] in card and f"T = {calibration['temperature']}" in card


# news has 6,000 dev rows: about a minute on a busy 2-core box
@pytest.mark.parametrize("name", [pytest.param("news", marks=pytest.mark.slow), "sentiment", "spam"])
def test_shipped_model_dev_metrics_reproduce(name, shared_data):
    """The accuracy and ECE in config.json (and the card) are what evaluating the artifact gives today."""
    path = SHIPPED_MODEL_DIR / name
    model, tokenizer, config = load_artifact(path)
    clf = Classifier(name, "-", model, tokenizer, config["labels"], config["max_tokens"], torch.device("cpu"))
    with gzip.open(shared_data / SHIPPED[name][0] / "dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    preds = clf.predict([r["text"] for r in rows])
    gold = [r["label"] for r in rows]
    report = classification_report(gold, [p.label for p in preds], clf.labels)
    assert round(report["accuracy"], 5) == config["metrics"]["dev"]["accuracy"]
    ece = calibration_report(gold, clf.labels, [p.probs for p in preds])["ece"]
    assert round(ece, 5) == config["metrics"]["dev"]["ece"]


def test_shipped_generator_is_small_and_its_recorded_oracle_scores_reproduce():
    """`shapes`: the exact-match figures in config.json (and the card) are what the oracle gives today."""
    from lstmq.worker.ml.generator.inference import from_artifact
    from lstmq.worker.shapes.evaluation import evaluate

    path = SHIPPED_MODEL_DIR / "shapes"
    config = check_artifact(path)
    assert config["kind"] == "generator"
    assert sum(f.stat().st_size for f in path.iterdir()) <= MAX_ARTIFACT_BYTES
    assert config["training"]["command"] in (path / "MODEL_CARD.md").read_text()
    report = evaluate(from_artifact(path).images, n=500)
    recorded = config["metrics"]
    for caption_set in ("one_object", "two_object", "held_out"):
        assert report[caption_set]["exact"] == recorded[f"{caption_set}_exact"], caption_set
