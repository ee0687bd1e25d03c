"""Installed model artifacts that are structurally valid but hold no real weights: enough for the
producer's checks, which never run a model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def install_fake_model(folder: Path, name: str, kind: str) -> str:
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(target / "model.safetensors"))
    config = {"kind": kind, "labels": ["neg", "pos"] if kind == "classifier" else [], "max_tokens": 16}
    (target / "config.json").write_text(json.dumps(config))
    (target / "tokenizer.json").write_text("{}")
    return name
