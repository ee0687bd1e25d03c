"""The text-to-image generator: caption -> BiLSTM -> per-object slots -> masks x colours -> image.

Like alignDRAW (Mansimov et al., ICLR 2016) an LSTM reads the caption and drives an image
decoder; unlike its recurrent canvas, ours composes the image from object *slots*, which makes
unseen colour-shape pairs drawable by construction::

    ids (B, T) -> embed (B, T, E) -> BiLSTM (B, T, 2H)
        gates  = sigmoid(Linear(LSTM state))       (B, T, S, 2)  which words feed which slot/path
        geom_s = sum_t gate_geom[t, s] * Vg(embed_t)   (B, S, D)   shape, size, position words
        col_s  = sum_t gate_col[t, s]  * Vc(embed_t)   (B, S, D)   colour words
    mask_s = separable([geom_s, z, onehot(s)]) (B, S, 1, 64, 64);  rgb_s = sigmoid(MLP(col_s)) (B, S, 3)
    image  = over-composite of mask_s * rgb_s, slot 0 in front   (B, 3, 64, 64)

The LSTM decides the binding (which object a word describes); the *values* are word
embeddings, so the mask path never sees which colour was asked for and vice versa.
``z`` (B, Z) is the noise for what the caption leaves open (size, position): a conditional VAE,
whose posterior q(z | image, caption) exists only in training; generation draws z ~ N(0, I).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass
class GeneratorConfig:
    vocab_size: int
    embed_dim: int = 64
    hidden_dim: int = 64  # per direction
    slots: int = 2  # objects an image can hold
    slot_dim: int = 64
    z_dim: int = 8
    decoder_dim: int = 256
    canvas: int = 64  # output side in pixels
    rank: int = 6  # separable terms of a mask's logit field
    pool: int = 16  # the posterior sees the image average-pooled to pool x pool
    pad_id: int = 0
    # Generation scales prior noise by this (part of the architecture, so of the version id).
    temperature: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GeneratorConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown architecture keys: {', '.join(sorted(unknown))}")
        return cls(**data)


class CaptionEncoder(nn.Module):
    """ids -> per-slot geometry and colour vectors, the gates, and a caption summary."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.hidden_dim, batch_first=True, bidirectional=True)
        self.gates = nn.Linear(2 * cfg.hidden_dim, cfg.slots * 2)
        self.geom_value = nn.Linear(cfg.embed_dim, cfg.slot_dim)
        self.colour_value = nn.Linear(cfg.embed_dim, cfg.slot_dim)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor):
        emb = self.embed(ids)  # (B, T, E)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=ids.shape[1])
        mask = (ids != self.cfg.pad_id).float()[:, :, None]  # (B, T, 1)
        gates = torch.sigmoid(self.gates(states)).view(*ids.shape, self.cfg.slots, 2)  # (B, T, S, 2)
        gates = gates * mask[..., None]
        geom = torch.einsum("bts,btd->bsd", gates[..., 0], self.geom_value(emb))  # (B, S, D)
        colour = torch.einsum("bts,btd->bsd", gates[..., 1], self.colour_value(emb))  # (B, S, D)
        summary = (states * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, 2H)
        return geom, colour, gates, summary


class MaskDecoder(nn.Module):
    """[geometry, z, slot one-hot] (N, D+Z+S) -> mask logits (N, 1, canvas, canvas).

    The logit field is a sum of R separable terms, logit(y, x) = sum_r u_r(y) * v_r(x) + b:
    circle, diamond and triangle boundaries are rank-2/3 fields (e.g. r^2 - (x-cx)^2 - (y-cy)^2),
    a square is rank 1 (two interval profiles), so a sharp full-resolution mask costs two
    (R, canvas) profiles instead of a deconvolution stack (~20x cheaper on a CPU).
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.rank, self.canvas = cfg.rank, cfg.canvas
        self.mlp = nn.Sequential(
            nn.Linear(cfg.slot_dim + cfg.z_dim + cfg.slots, cfg.decoder_dim), nn.ReLU(),
            nn.Linear(cfg.decoder_dim, cfg.decoder_dim), nn.ReLU(),
            nn.Linear(cfg.decoder_dim, 2 * cfg.rank * cfg.canvas),
        )
        self.bias = nn.Parameter(torch.tensor(-4.0))  # empty canvas until told otherwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = self.mlp(x).view(-1, 2, self.rank, self.canvas).unbind(1)  # (N, R, C) each
        return (torch.einsum("nry,nrx->nyx", u, v) + self.bias)[:, None]  # (N, 1, C, C)


class Posterior(nn.Module):
    """q(z | image, caption), training only: (B, 3, canvas, canvas), (B, 2H) -> mu, logvar (B, Z)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(cfg.pool)
        self.mlp = nn.Sequential(nn.Linear(3 * cfg.pool**2 + 2 * cfg.hidden_dim, cfg.decoder_dim), nn.ReLU(),
                                 nn.Linear(cfg.decoder_dim, 2 * cfg.z_dim))

    def forward(self, image: torch.Tensor, summary: torch.Tensor):
        mu, logvar = self.mlp(torch.cat([self.pool(image).flatten(1), summary], 1)).chunk(2, dim=1)
        return mu, logvar.clamp(-8, 4)


def composite(masks: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """masks (B, S, 1, H, W) in [0, 1], rgb (B, S, 3) -> (B, 3, H, W); slot 0 in front, black behind."""
    image = torch.zeros_like(masks[:, 0].expand(-1, 3, -1, -1))
    for s in reversed(range(masks.shape[1])):
        image = masks[:, s] * rgb[:, s, :, None, None] + (1 - masks[:, s]) * image
    return image


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = CaptionEncoder(cfg)
        self.decoder = MaskDecoder(cfg)
        self.colour = nn.Sequential(nn.Linear(cfg.slot_dim, 64), nn.ReLU(), nn.Linear(64, 3))
        self.posterior = Posterior(cfg)

    def draw(self, geom: torch.Tensor, colour: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(B, S, D), (B, S, D), (B, Z) -> image (B, 3, canvas, canvas) in [0, 1]."""
        b, s = geom.shape[:2]
        slot_id = torch.eye(s, device=geom.device).expand(b, s, s)
        x = torch.cat([geom, z[:, None, :].expand(b, s, -1), slot_id], dim=2).reshape(b * s, -1)
        masks = torch.sigmoid(self.decoder(x)).view(b, s, 1, self.cfg.canvas, self.cfg.canvas)
        return composite(masks, torch.sigmoid(self.colour(colour)))

    def forward(self, ids, lengths, image):
        """Training pass: (reconstruction from posterior z, drawing from prior z, mu, logvar, gates);
        images (B, 3, H, W)."""
        geom, colour, gates, summary = self.encoder(ids, lengths)
        mu, logvar = self.posterior(image, summary)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        both = self.draw(torch.cat([geom, geom]), torch.cat([colour, colour]), torch.cat([z, torch.randn_like(z)]))
        recon, prior = both.chunk(2)
        return recon, prior, mu, logvar, gates

    @torch.no_grad()
    def generate(self, ids: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """ids (B, T), z (B, Z) drawn from the prior N(0, I) -> images (B, 3, canvas, canvas) in [0, 1]."""
        geom, colour, _, _ = self.encoder(ids, lengths)
        return self.draw(geom, colour, z)
