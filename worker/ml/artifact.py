"""Classifier artifacts on disk: safetensors weights + config.json + tokenizer.json.

Loading never unpickles: weights come from safetensors, the architecture from JSON, the
vocabulary from the tokenizer's JSON. Weights are stored in fp16 by default (half the size);
``save_artifact`` rounds the in-memory model to the stored precision first, so a model
predicts bit-identically before saving and after loading.
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
from worker.ml.model import ClassifierConfig, Ensemble

FORMAT_VERSION = 1
DTYPES = {"float16": torch.float16, "float32": torch.float32}


def round_to_dtype(model: torch.nn.Module, dtype: str) -> None:
    """In place: weights become exactly what a save in ``dtype`` will store."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(DTYPES[dtype]).float())


def save_artifact(path: Path, model: Ensemble, tokenizer: Tokenizer, labels: list[str], max_tokens: int,
                  extra: dict | None = None, dtype: str = "float16") -> Path:
    """Write the artifact into ``path`` (replaced atomically if it exists)."""
    round_to_dtype(model, dtype)
    config = {"format": FORMAT_VERSION, "kind": "classifier", "labels": list(labels), "max_tokens": max_tokens,
              "architecture": model.cfg.to_dict(), "weights_dtype": dtype, **(extra or {})}
    state = {k: v.detach().to(DTYPES[dtype]).contiguous().cpu() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save(str(tmp / "tokenizer.json"))
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    _publish_modes(tmp)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def _publish_modes(folder: Path) -> None:
    """mkdtemp makes 0700 folders: give the artifact ordinary modes (it ships as package data)."""
    folder.chmod(0o755)
    for file in folder.iterdir():
        file.chmod(0o644)


def update_config(path: Path, **changes) -> None:
    """Merge keys into config.json (e.g. metrics after evaluation); weights are untouched."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def load_artifact(path: Path) -> tuple[Ensemble, Tokenizer, dict]:
    """(model in eval mode, float32, on CPU; tokenizer; config). Raises ArtifactError."""
    config = check_artifact(path)
    if config["kind"] != "classifier":
        raise ArtifactError(f"model {path.name!r} is a {config['kind']}, not a classifier")
    try:
        arch = ClassifierConfig.from_dict(config["architecture"])
        model = Ensemble(arch)
        state = load_file(str(path / "model.safetensors"))
        model.load_state_dict({k: v.float() for k, v in state.items()})
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    except Exception as exc:  # noqa: BLE001 - whatever fails here, the artifact is unusable
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"model artifact {path} cannot be loaded: {first[:200]}") from None
    if len(config["labels"]) != arch.num_labels:
        raise ArtifactError(f"model artifact {path}: {len(config['labels'])} labels but {arch.num_labels} outputs")
    return model.eval(), tokenizer, config
