"""Stored precision of model weights, for every model family.

Weights are stored in fp16 by default (half the size); ``int8-embeddings`` also stores each
embedding table as int8 rows with one fp16 scale per row (the tables are most of a word-level
model's bytes, so an ensemble fits twice the members in the same size); ``int8`` stores every
weight matrix that way (LSTM and output layer too; biases stay fp16). ``round_to_dtype``
rounds the in-memory model to the stored precision, so a model predicts bit-identically
before saving and after loading.
"""

from __future__ import annotations

import torch

from lstmq.errors import InputError

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
