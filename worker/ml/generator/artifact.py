"""Generator artifacts: the same on-disk form as classifiers (``lstmq.worker.ml.artifacts``), kind
"generator". The posterior network is training-only and not stored, so the shipped weights
are exactly what generation uses."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer

from lstmq.worker.ml.artifacts import loading, read_config, read_tokenizer, read_weights, write_artifact
from lstmq.worker.ml.generator.model import Generator, GeneratorConfig

KIND = "generator"
TRAINING_ONLY = "posterior."  # state-dict prefix left out of the artifact


def save_generator(
    path: Path,
    model: Generator,
    tokenizer: Tokenizer,
    max_tokens: int,
    extra: dict | None = None,
    dtype: str = "float16",
) -> Path:
    """Write the artifact into ``path`` (replaced atomically if it exists)."""
    return write_artifact(path, KIND, model, tokenizer, max_tokens, (), extra, dtype, leave_out=(TRAINING_ONLY,))


def load_generator_artifact(path: Path) -> tuple[Generator, Tokenizer, dict]:
    """(model in eval mode, float32, CPU; tokenizer; config). Raises ArtifactError."""
    config = read_config(path, KIND)
    with loading(path):
        model = Generator(GeneratorConfig.from_dict(config["architecture"]))
        missing, unexpected = model.load_state_dict(read_weights(path), strict=False)
        missing = [k for k in missing if not k.startswith(TRAINING_ONLY)]
        if missing or unexpected:
            raise ValueError(f"weights do not fit the architecture ({(missing + unexpected)[:3]})")
        tokenizer = read_tokenizer(path)
    return model.eval(), tokenizer, config


def to_uint8(images: torch.Tensor) -> list:
    """(B, 3, H, W) in [0, 1] -> list of (H, W, 3) uint8 numpy arrays."""
    arrays = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return list(arrays)
