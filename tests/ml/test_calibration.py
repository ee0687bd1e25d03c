"""Calibrated scores: reliability and ECE, temperature fitting, and the temperature in the artifact."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from lstmq.modelstore import version_id
from lstmq.worker.ml.classifier.artifact import load_artifact, save_artifact
from lstmq.worker.ml.classifier.calibration import calibrate, ece, fit_temperature, held_out_ece, nll
from lstmq.worker.ml.classifier.config import TrainConfig
from lstmq.worker.ml.classifier.inference import Classifier
from lstmq.worker.ml.classifier.metrics import reliability
from lstmq.worker.ml.classifier.model import ClassifierConfig, Ensemble, tempered
from lstmq.worker.ml.classifier.train import train_classifier
from tests.ml.test_training import TINY, synthetic
from tests.support.tiny_classifier import make_tiny_classifier

CPU = torch.device("cpu")


def overconfident(n: int = 4000, scale: float = 5.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(z) (calibrated by construction); the model says log_softmax(scale * z)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 3, generator=gen) * 1.5
    y = torch.multinomial(z.softmax(-1), 1, generator=gen).squeeze(1)
    return (scale * z).log_softmax(-1), y


def test_reliability_bins_the_top_score_and_weighs_the_gap_by_count():
    table = reliability([0.95, 0.95, 0.55, 0.55, 1.0], [True, False, True, True, True])
    assert [(b["lower"], b["count"]) for b in table["bins"]] == [(8 / 15, 2), (14 / 15, 3)]
    high = table["bins"][1]
    assert high["confidence"] == pytest.approx(2.9 / 3) and high["accuracy"] == pytest.approx(2 / 3)
    assert table["ece"] == pytest.approx((2 * 0.45 + 3 * abs(2 / 3 - 2.9 / 3)) / 5)
    assert reliability([], []) == {"ece": 0.0, "bins": []}


def test_fitting_a_temperature_undoes_overconfidence_and_lowers_ece():
    log_p, y = overconfident()
    t = fit_temperature(log_p, y)
    assert t == pytest.approx(5.0, rel=0.1)
    before, after = ece(log_p.exp(), y), ece(tempered(log_p.exp(), t), y)
    assert before > 0.1 and after < 0.03
    assert nll(log_p, y, t) < nll(log_p, y, 1.0)
    assert nll(log_p, y, t) <= min(nll(log_p, y, t * f) for f in (0.9, 1.1))  # a minimum


def test_an_underconfident_model_is_sharpened():
    log_p, y = overconfident(scale=0.4)
    assert fit_temperature(log_p, y) == pytest.approx(0.4, rel=0.1)


def test_held_out_ece_fits_on_one_half_and_measures_on_the_other():
    log_p, y = overconfident()
    held = held_out_ece(log_p.exp(), y)
    assert [f["rows"] for f in held["folds"]] == [2000, 2000]
    assert all(f["temperature"] == pytest.approx(5.0, rel=0.15) for f in held["folds"])
    assert held["ece_before"] > 0.1 and held["ece_after"] < 0.04 and held["nll_after"] < held["nll_before"]
    assert held["ece_after"] == pytest.approx(sum(f["ece_after"] for f in held["folds"]) / 2, abs=1e-5)
    # the halves are a seeded shuffle, not even/odd rows: labels alternating in file order split evenly
    alternating = torch.arange(400) % 2
    probs = torch.full((400, 2), 0.5)
    assert held_out_ece(probs, alternating) == held_out_ece(probs, alternating)
    assert held_out_ece(probs, alternating)["folds"][0]["ece_before"] < 0.1
    assert held_out_ece(probs[:1], alternating[:1]) is None


def test_a_temperature_keeps_every_argmax_and_one_changes_nothing():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.45, 0.45], [0.0, 0.0, 1.0]])
    assert tempered(probs, 1.0) is probs
    for t in (0.1, 0.5, 3.0):
        out = tempered(probs, t)
        assert torch.equal(out.argmax(-1), probs.argmax(-1)) and torch.allclose(out.sum(-1), torch.ones(3))


def test_calibrate_sets_the_temperature_on_the_ensemble_and_reports_before_and_after():
    log_p, y = overconfident(n=500)
    model = Ensemble(ClassifierConfig(vocab_size=10, num_labels=3, embed_dim=4, hidden_dim=4))
    probs, summary = calibrate(model, log_p.exp().tolist(), y.tolist())
    assert model.cfg.temperature == summary["temperature"] == pytest.approx(5.0, rel=0.2)
    assert summary["ece_after"] < summary["ece_before"] and summary["nll_after"] < summary["nll_before"]
    assert torch.allclose(torch.tensor(probs), tempered(log_p.exp(), summary["temperature"]))


@pytest.fixture(scope="module")
def trained():
    return train_classifier(synthetic(300, 1), synthetic(60, 2), TrainConfig(**TINY), CPU)


def test_training_fits_a_temperature_and_the_dev_report_has_the_reliability_table(trained):
    c = trained.calibration
    assert set(c) == {"temperature", "nll_before", "nll_after", "ece_before", "ece_after"}
    assert trained.model.cfg.temperature == c["temperature"] != 1.0
    assert c["nll_after"] <= c["nll_before"]
    assert trained.dev_report["calibration"]["ece"] == pytest.approx(c["ece_after"], abs=1e-5)
    assert sum(b["count"] for b in trained.dev_report["calibration"]["bins"]) == 60


def test_without_calibration_the_model_keeps_temperature_one():
    result = train_classifier(
        synthetic(90, 1), synthetic(30, 2), TrainConfig(**{**TINY, "epochs": 1, "calibrate": False}), CPU
    )
    assert result.calibration is None and result.model.cfg.temperature == 1.0


def test_the_stored_temperature_round_trips_with_the_same_probabilities(trained, tmp_path):
    path = save_artifact(tmp_path / "calibrated", trained.model, trained.tokenizer, trained.labels, 16)
    model, tokenizer, config = load_artifact(path)
    assert config["architecture"]["temperature"] == model.cfg.temperature == trained.calibration["temperature"]
    texts = synthetic(40, 4).texts
    before = Classifier("t", "v", trained.model, trained.tokenizer, trained.labels, 16, CPU).predict(texts)
    after = Classifier("t", "v", model, tokenizer, config["labels"], 16, CPU).predict(texts)
    assert [p.probs for p in before] == [p.probs for p in after]


def test_an_artifact_without_a_temperature_loads_with_one_and_keeps_its_version(tmp_path):
    old = make_tiny_classifier(tmp_path / "old")
    assert "temperature" not in json.loads((old / "config.json").read_text())["architecture"]
    model, tokenizer, config = load_artifact(old)
    assert model.cfg.temperature == 1.0
    again = save_artifact(tmp_path / "again", model, tokenizer, config["labels"], config["max_tokens"])
    assert version_id(again) == version_id(old)  # the same model, so the same results key
    model.cfg = replace(model.cfg, temperature=2.0)
    warmer = save_artifact(tmp_path / "warmer", model, tokenizer, config["labels"], config["max_tokens"])
    assert version_id(warmer) != version_id(old)  # other scores: another version
