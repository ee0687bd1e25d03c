"""Classifier artifacts: kind "classifier", its labels, an ``Ensemble``'s weights (the on-disk
form and its precisions: ``lstmq.worker.ml.artifacts`` and ``lstmq.worker.ml.weights``)."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

from lstmq.errors import ArtifactError
from lstmq.worker.ml.artifacts import loading, read_config, read_tokenizer, read_weights, write_artifact
from lstmq.worker.ml.classifier.model import ClassifierConfig, Ensemble

KIND = "classifier"


def save_artifact(
    path: Path,
    model: Ensemble,
    tokenizer: Tokenizer,
    labels: list[str],
    max_tokens: int,
    extra: dict | None = None,
    dtype: str = "float16",
) -> Path:
    """Write the artifact into ``path`` (replaced atomically if it exists)."""
    return write_artifact(path, KIND, model, tokenizer, max_tokens, labels, extra, dtype)


def load_artifact(path: Path) -> tuple[Ensemble, Tokenizer, dict]:
    """(model in eval mode, float32, on CPU; tokenizer; config). Raises ArtifactError."""
    config = read_config(path, KIND)
    with loading(path):
        arch = ClassifierConfig.from_dict(config["architecture"])
        model = Ensemble(arch)
        model.load_state_dict(read_weights(path))
        tokenizer = read_tokenizer(path)
    if len(config["labels"]) != arch.num_labels:
        raise ArtifactError(f"model artifact {path}: {len(config['labels'])} labels but {arch.num_labels} outputs")
    return model.eval(), tokenizer, config
