"""The LSTM text classifier: embedding -> BiLSTM (packed) -> masked pooling -> linear.

An artifact may hold an *ensemble* of ``members`` identically shaped classifiers trained with
different seeds; its prediction is the mean of their probability vectors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

POOLINGS = ("max", "maxmean", "attention")


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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ClassifierConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown architecture keys: {', '.join(sorted(unknown))}")
        config = cls(**data)
        if config.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}")
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


class Ensemble(nn.Module):
    """``members`` classifiers; ``forward`` returns mean probabilities (B, C)."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.members = nn.ModuleList(LSTMClassifier(cfg) for _ in range(cfg.members))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        probs = [m(ids, lengths).float().softmax(dim=-1) for m in self.members]
        return torch.stack(probs).mean(dim=0)
