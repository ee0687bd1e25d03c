"""Generator artifacts: the same on-disk form as classifiers (config.json, safetensors, tokenizer).

``kind`` is "generator"; the posterior network is training-only and not stored, so the shipped
weights are exactly what generation uses. Weights are stored in fp16 (half the size).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from lstmq.errors import ArtifactError
from lstmq.modelstore import check_artifact
from worker.ml.classifier.artifact import loaded_state, round_to_dtype, stored_state
from worker.ml.generator.model import Generator, GeneratorConfig

FORMAT_VERSION = 1
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
    round_to_dtype(model, dtype)
    config = {
        "format": FORMAT_VERSION,
        "kind": "generator",
        "labels": [],
        "max_tokens": max_tokens,
        "architecture": model.cfg.to_dict(),
        "weights_dtype": dtype,
        **(extra or {}),
    }
    state = {k: v for k, v in stored_state(model, dtype).items() if not k.startswith(TRAINING_ONLY)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save(str(tmp / "tokenizer.json"))
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def load_generator_artifact(path: Path) -> tuple[Generator, Tokenizer, dict]:
    """(model in eval mode, float32, CPU; tokenizer; config). Raises ArtifactError."""
    config = check_artifact(path)
    if config["kind"] != "generator":
        raise ArtifactError(f"model {path.name!r} is a {config['kind']}, not a generator")
    try:
        model = Generator(GeneratorConfig.from_dict(config["architecture"]))
        state = loaded_state(load_file(str(path / "model.safetensors")))
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith(TRAINING_ONLY)]
        if missing or unexpected:
            raise ValueError(f"weights do not fit the architecture ({(missing + unexpected)[:3]})")
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    except Exception as exc:  # noqa: BLE001 - whatever fails here, the artifact is unusable
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"model artifact {path} cannot be loaded: {first[:200]}") from None
    return model.eval(), tokenizer, config


def to_uint8(images: torch.Tensor) -> list:
    """(B, 3, H, W) in [0, 1] -> list of (H, W, 3) uint8 numpy arrays."""
    arrays = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return list(arrays)
