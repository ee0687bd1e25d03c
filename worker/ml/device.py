"""Where a model runs and in which precision: chosen once, the same way for every model family."""

from __future__ import annotations

import torch

from lstmq.errors import ConfigError

AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ConfigError(f"device must be auto, cpu or cuda[:N], not {device!r}")
    return torch.device(device)


def resolve_autocast(autocast: str, device: torch.device) -> torch.dtype | None:
    """fp16 on CUDA by default (cuDNN's LSTM kernels support it everywhere; bf16 RNNs depend on
    the cuDNN version, so bf16 is opt-in); never on CPU (no speed-up for LSTMs there)."""
    if autocast in ("off", "none"):
        return None
    if autocast not in ("auto", *AUTOCAST):
        raise ConfigError(f"autocast must be auto, off, bf16 or fp16, not {autocast!r}")
    if device.type != "cuda":
        if autocast != "auto":
            raise ConfigError(f"autocast {autocast} needs a CUDA device")
        return None
    return AUTOCAST["fp16" if autocast == "auto" else autocast]
