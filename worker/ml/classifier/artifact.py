"""Classifier artifacts on disk: safetensors weights + config.json + tokenizer.json.

Loading never unpickles: weights come from safetensors, the architecture from JSON, the
vocabulary from the tokenizer's JSON. Weights are stored in fp16 by default (half the size);
``int8-embeddings`` also stores each embedding table as int8 rows with one fp16 scale per row
(the tables are most of a word-level model's bytes, so an ensemble fits twice the members in
the same size); ``int8`` stores every weight matrix that way (LSTM and output layer too; biases
stay fp16). ``save_artifact`` rounds the in-memory model to the stored precision first, so
a model predicts bit-identically before saving and after loading.
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

from lstmq.errors import ArtifactError, InputError
from lstmq.modelstore import check_artifact
from worker.ml.classifier.model import ClassifierConfig, Ensemble

FORMAT_VERSION = 1
INT8_EMBEDDINGS, INT8 = "int8-embeddings", "int8"
# the float dtype of whatever a dtype does not store as int8 rows
DTYPES = {"float16": torch.float16, "float32": torch.float32, INT8_EMBEDDINGS: torch.float16, INT8: torch.float16}
SCALE_SUFFIX = ".row_scale"  # the fp16 scales of an int8 tensor stored under the same name


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise InputError(f"unknown weights dtype {dtype!r} (expected {' | '.join(DTYPES)})")


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, E) float -> int8 (V, E) and an fp16 scale per row (symmetric; a zero row stays zero)."""
    scale = (weight.abs().amax(dim=1) / 127).to(torch.float16)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    return torch.round(weight / scale.float()[:, None]).clamp(-127, 127).to(torch.int8), scale


def dequantize_rows(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float()[:, None]


def _quantized(name: str, tensor: torch.Tensor, dtype: str) -> bool:
    if tensor.dim() != 2 or not tensor.is_floating_point():
        return False
    return dtype == INT8 or (dtype == INT8_EMBEDDINGS and name.endswith("embed.weight"))


def round_to_dtype(model: torch.nn.Module, dtype: str) -> None:
    """In place: weights become exactly what a save in ``dtype`` will store."""
    check_dtype(dtype)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(dequantize_rows(*quantize_rows(p)) if _quantized(name, p, dtype) else p.to(DTYPES[dtype]).float())


def stored_state(model: torch.nn.Module, dtype: str) -> dict[str, torch.Tensor]:
    state = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if _quantized(name, tensor, dtype):
            state[name], state[name + SCALE_SUFFIX] = quantize_rows(tensor)
        else:
            state[name] = tensor.to(DTYPES[dtype]).contiguous()
    return state


def loaded_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What ``stored_state`` wrote, back as float32 tensors."""
    return {
        name: dequantize_rows(t, state[name + SCALE_SUFFIX]) if name + SCALE_SUFFIX in state else t.float()
        for name, t in state.items()
        if not name.endswith(SCALE_SUFFIX)
    }


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
    round_to_dtype(model, dtype)
    config = {
        "format": FORMAT_VERSION,
        "kind": "classifier",
        "labels": list(labels),
        "max_tokens": max_tokens,
        "architecture": model.cfg.to_dict(),
        "weights_dtype": dtype,
        **(extra or {}),
    }
    state = stored_state(model, dtype)
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
        model.load_state_dict(loaded_state(state))
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    except Exception as exc:  # noqa: BLE001 - whatever fails here, the artifact is unusable
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(f"model artifact {path} cannot be loaded: {first[:200]}") from None
    if len(config["labels"]) != arch.num_labels:
        raise ArtifactError(f"model artifact {path}: {len(config['labels'])} labels but {arch.num_labels} outputs")
    return model.eval(), tokenizer, config
