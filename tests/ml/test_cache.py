"""One cache rule for every model family: loaded once per (name, device), and loaded again
when the installed artifact's version changes (a retrained model replaces the old one)."""

from __future__ import annotations

import pytest
import torch

from lstmq.worker.ml.classifier.inference import load_classifier
from lstmq.worker.ml.generator.artifact import save_generator
from lstmq.worker.ml.generator.inference import load_image_generator
from tests.support.tiny_classifier import make_tiny_classifier
from tests.support.tiny_generator import make_tiny_generator


@pytest.fixture
def model_dir(lstmq_env, tmp_path):
    lstmq_env(model_dir=str(tmp_path / "models"))
    return tmp_path / "models"


def test_an_unchanged_classifier_is_loaded_once(model_dir):
    make_tiny_classifier(model_dir / "mine")
    assert load_classifier("mine", device="cpu") is load_classifier("mine", device="cpu")


def test_a_replaced_classifier_is_loaded_again_with_its_new_version(model_dir):
    make_tiny_classifier(model_dir / "mine", seed=0)
    old = load_classifier("mine", device="cpu")
    make_tiny_classifier(model_dir / "mine", seed=1)  # what `lstmq train classifier --name mine` does
    new = load_classifier("mine", device="cpu")

    assert new.version != old.version
    assert new.predict(["a good film"])[0].probs != old.predict(["a good film"])[0].probs


def test_a_replaced_generator_is_loaded_again_with_its_new_version(model_dir):
    make_tiny_generator(model_dir, "gen")
    old = load_image_generator("gen", device="cpu")
    with torch.no_grad():
        old.model.decoder.bias.fill_(1.0)
    save_generator(model_dir / "gen", old.model, old.tokenizer, old.max_tokens)
    new = load_image_generator("gen", device="cpu")

    assert new.version != old.version and load_image_generator("gen", device="cpu") is new
