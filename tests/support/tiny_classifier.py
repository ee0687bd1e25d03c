"""A small classifier artifact for artifact and cache tests (untrained weights: the plumbing is
under test). Imports torch: only test modules that skip without torch import this."""

from __future__ import annotations

from pathlib import Path

import torch

from lstmq.worker.ml.classifier.artifact import save_artifact
from lstmq.worker.ml.classifier.model import ClassifierConfig, Ensemble
from lstmq.worker.ml.tokenizer import train_tokenizer


def make_tiny_classifier(path: Path, seed: int = 0) -> Path:
    """Labels neg, pos; ``seed`` picks the weights (another seed, another version)."""
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(["a good film", "a bad film"], min_frequency=1)
    model = Ensemble(ClassifierConfig(vocab_size=tokenizer.get_vocab_size(), num_labels=2, embed_dim=8, hidden_dim=8))
    return save_artifact(path, model.eval(), tokenizer, ["neg", "pos"], 16)
