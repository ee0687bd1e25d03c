"""The LSTM text classifier: embedding -> BiLSTM (packed) -> masked pooling -> linear.

An artifact may hold an *ensemble* of ``members`` identically shaped classifiers trained with
different seeds; its prediction is the mean of their probability vectors, sharpened or softened
by one ``temperature`` fitted on dev (``calibration.py``). The temperature sits in the
architecture because it changes what the model computes: the version id, which hashes the
architecture, then changes with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmq.worker.ml.classifier.config import POOLINGS


@dataclass
class ClassifierConfig:
    vocab_size: int
    num_labels: int
    embed_dim: int = 128
    hidden_dim: int = 192  # per direction
    num_layers: int = 1
    dropout: float = 0.3  # on the pooled vector, and between LSTM layers
    pooling: str = "maxmean"
    pad_id: int = 0
    members: int = 1
    temperature: float = 1.0  # probabilities = softmax(log(mean member probabilities) / T)

    def to_dict(self) -> dict:
        """Without ``temperature`` when it is 1: an uncalibrated model keeps today's config (and version)."""
        data = asdict(self)
        if data["temperature"] == 1.0:
            del data["temperature"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ClassifierConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown architecture keys: {', '.join(sorted(unknown))}")
        config = cls(**data)
        if config.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}")
        if not config.temperature > 0:
            raise ValueError(f"temperature must be > 0, not {config.temperature}")
        return config


class LSTMClassifier(nn.Module):
    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id)
        self.lstm = nn.LSTM(
            cfg.embed_dim,
            cfg.hidden_dim,
            num_layers=cfg.num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        width = 2 * cfg.hidden_dim
        pooled = 2 * width if cfg.pooling == "maxmean" else width
        self.attn = nn.Linear(width, 1) if cfg.pooling == "attention" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(pooled, cfg.num_labels)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T) int64, lengths (B,) >= 1 on CPU -> logits (B, C)."""
        x = self.embed(ids)  # (B, T, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])  # (B, T, 2H)
        mask = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths.to(ids.device)[:, None]
        return self.head(self.drop(self._pool(h, mask.unsqueeze(-1))))  # (B, C)

    def _pool(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h (B, T, 2H), mask (B, T, 1) bool -> (B, P)."""
        neg = torch.finfo(h.dtype).min
        if self.attn is not None:
            weights = self.attn(h).masked_fill(~mask, neg).softmax(dim=1)  # (B, T, 1)
            return (weights * h).sum(dim=1)
        pooled = h.masked_fill(~mask, neg).amax(dim=1)  # (B, 2H)
        if self.cfg.pooling == "maxmean":
            mean = (h * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
            pooled = torch.cat([pooled, mean], dim=-1)  # (B, 4H)
        return pooled


def safe_log(probs: torch.Tensor) -> torch.Tensor:
    """log p with p = 0 (an underflowed softmax) read as the smallest positive float."""
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


def tempered(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(log p / T), (B, C) -> (B, C): T > 1 softens, T < 1 sharpens, argmax unchanged.
    For one member this is softmax(logits / T), the usual temperature scaling (Guo et al. 2017)."""
    if temperature == 1.0:
        return probs  # exactly what an artifact without a temperature always computed
    return (safe_log(probs) / temperature).softmax(dim=-1)


class Ensemble(nn.Module):
    """``members`` classifiers; ``forward`` returns mean probabilities (B, C), tempered by ``cfg.temperature``."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.members = nn.ModuleList(LSTMClassifier(cfg) for _ in range(cfg.members))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        probs = [m(ids, lengths).float().softmax(dim=-1) for m in self.members]
        return tempered(torch.stack(probs).mean(dim=0), self.cfg.temperature)
