"""The text-to-image generator: caption -> BiLSTM -> per-object slots -> masks x colours -> image.

Like alignDRAW (Mansimov et al., ICLR 2016) an LSTM reads the caption and drives an image
decoder; unlike its recurrent canvas, ours composes the image from object *slots*, which makes
unseen colour-shape pairs drawable by construction::

    ids (B, T) -> embed (B, T, E) -> BiLSTM (B, T, 2H)
        gate   = sigmoid(Linear(LSTM state))[..., 0]           (B, T, S)  words -> slot geometry
        attn   = softmax_t(Linear(LSTM state)[..., 1])         (B, T, S)  the slot's colour word
        geom_s = sum_t gate[t, s] * Vg(embed_t)   (B, S, D)   shape, size, position words
        col_s  = sum_t attn[t, s] * Vc(embed_t)   (B, S, D)   colour word
        scene  = sum_t gate_scene[t] * Vs(embed_t) (B, D)     relation words, appended to each geom_s
    mask_s = separable([geom_s, z, onehot(s)]) (B, S, 1, 64, 64);  rgb_s = sigmoid(MLP(col_s)) (B, S, 3)
    image  = over-composite of mask_s * rgb_s, slot 0 in front   (B, 3, 64, 64)

The LSTM decides the binding (which object a word describes); the *values* are word
embeddings, so the mask path never sees which colour was asked for and vice versa.
``z`` (B, Z) is the noise for what the caption leaves open (size, position): a conditional VAE,
whose posterior q(z | image, caption) exists only in training; generation draws z ~ N(0, I).
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    z_dim: int = 4  # noise dimensions, or number of codes when latent is categorical
    latent: str = "gaussian"  # or "categorical": one-hot codes, no in-between (blended) samples
    decoder_dim: int = 256
    canvas: int = 64  # output side in pixels
    rank: int = 6  # separable terms of a mask's logit field
    pool: int = 16  # the posterior sees the image average-pooled to pool x pool
    pad_id: int = 0
    colour_attention: str = "softmax"  # softmax over words per slot, or independent "sigmoid" gates
    scene_path: bool = True  # a gated bag of scene words (relations) given to every slot
    # Generation settings, chosen after training (part of the architecture, so of the version id):
    temperature: float = 1.0  # scales the prior noise
    mask_sharpness: float = 1.0  # multiplies mask logits: > 1 draws crisp, fully coloured objects
    # A drawing whose masks cover fewer than min_cover_pixels is redrawn with fresh noise, at
    # most `redraws` times: the prior holds noise that decodes to an empty canvas (0 = off).
    redraws: int = 0
    min_cover_pixels: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GeneratorConfig:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown architecture keys: {', '.join(sorted(unknown))}")
        cfg = cls(**data)
        if cfg.colour_attention not in ("softmax", "sigmoid"):
            raise ValueError("colour_attention must be softmax or sigmoid")
        if cfg.latent not in ("gaussian", "categorical"):
            raise ValueError("latent must be gaussian or categorical")
        return cfg


class CaptionEncoder(nn.Module):
    """ids -> per-slot geometry and colour vectors, the gates, and a caption summary."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.hidden_dim, batch_first=True, bidirectional=True)
        self.gates = nn.Linear(2 * cfg.hidden_dim, cfg.slots * 2 + int(cfg.scene_path))
        self.geom_value = nn.Linear(cfg.embed_dim, cfg.slot_dim)
        self.colour_value = nn.Linear(cfg.embed_dim, cfg.slot_dim)
        self.scene_value = nn.Linear(cfg.embed_dim, cfg.slot_dim) if cfg.scene_path else None

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor):
        emb = self.embed(ids)  # (B, T, E)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=ids.shape[1])
        mask = (ids != self.cfg.pad_id).float()[:, :, None]  # (B, T, 1)
        all_logits = self.gates(states)  # (B, T, 2S [+ 1])
        logits = all_logits[..., : 2 * self.cfg.slots].reshape(*ids.shape, self.cfg.slots, 2)  # (B, T, S, 2)
        gates = torch.sigmoid(logits) * mask[..., None]
        if self.cfg.colour_attention == "softmax":  # an object has one colour word: pick one
            attn = logits[..., 1].masked_fill(mask == 0, float("-inf")).softmax(dim=1)  # (B, T, S)
            gates = torch.stack([gates[..., 0], attn], dim=-1)
        geom = torch.einsum("bts,btd->bsd", gates[..., 0], self.geom_value(emb))  # (B, S, D)
        colour = torch.einsum("bts,btd->bsd", gates[..., 1], self.colour_value(emb))  # (B, S, D)
        if self.scene_value is not None:  # scene words (relation, placement) shared by every slot
            scene_gate = torch.sigmoid(all_logits[..., -1:]) * mask  # (B, T, 1)
            scene = (scene_gate * self.scene_value(emb)).sum(1, keepdim=True)  # (B, 1, D)
            geom = torch.cat([geom, scene.expand(-1, self.cfg.slots, -1)], dim=2)  # (B, S, 2D)
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
            nn.Linear(cfg.slot_dim * (1 + int(cfg.scene_path)) + cfg.z_dim + cfg.slots, cfg.decoder_dim),
            nn.ReLU(),
            nn.Linear(cfg.decoder_dim, cfg.decoder_dim),
            nn.ReLU(),
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
        self.mlp = nn.Sequential(
            nn.Linear(3 * cfg.pool**2 + 2 * cfg.hidden_dim, cfg.decoder_dim),
            nn.ReLU(),
            nn.Linear(cfg.decoder_dim, 2 * cfg.z_dim),
        )

    def forward(self, image: torch.Tensor, summary: torch.Tensor):
        mu, logvar = self.mlp(torch.cat([self.pool(image).flatten(1), summary], 1)).chunk(2, dim=1)
        return mu, logvar.clamp(-8, 4)


def composite(masks: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """masks (B, S, 1, H, W) in [0, 1], rgb (B, S, 3) -> (B, 3, H, W); slot 0 in front, black behind."""
    image = torch.zeros_like(masks[:, 0].expand(-1, 3, -1, -1))
    for s in reversed(range(masks.shape[1])):
        image = masks[:, s] * rgb[:, s, :, None, None] + (1 - masks[:, s]) * image
    return image


def sample_posterior(latent: str, mu: torch.Tensor, logvar: torch.Tensor):
    """(z (B, Z), KL to the prior (B,)). Gaussian: reparameterised. Categorical: straight-through
    Gumbel-softmax one-hot over Z codes, prior uniform (``mu`` are the code logits)."""
    if latent == "categorical":
        log_q = mu.log_softmax(dim=1)
        kl = (log_q.exp() * (log_q + math.log(mu.shape[1]))).sum(1)
        return nn.functional.gumbel_softmax(mu, tau=1.0, hard=True), kl
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    return z, -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)


def sample_prior(latent: str, n: int, z_dim: int, generator: torch.Generator | None) -> torch.Tensor:
    """(n, Z) prior noise: standard normal, or a uniformly drawn one-hot code."""
    if latent == "categorical":
        codes = torch.randint(z_dim, (n,), generator=generator)
        return nn.functional.one_hot(codes, z_dim).float()
    return torch.randn(n, z_dim, generator=generator)


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = CaptionEncoder(cfg)
        self.decoder = MaskDecoder(cfg)
        self.colour = nn.Sequential(nn.Linear(cfg.slot_dim, 64), nn.ReLU(), nn.Linear(64, 3))
        self.posterior = Posterior(cfg)

    def draw(self, geom: torch.Tensor, colour: torch.Tensor, z: torch.Tensor, sharpness: float = 1.0) -> torch.Tensor:
        """(B, S, D), (B, S, D), (B, Z) -> image (B, 3, canvas, canvas) in [0, 1]."""
        return self.draw_with_cover(geom, colour, z, sharpness)[0]

    def draw_with_cover(self, geom, colour, z, sharpness: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """draw(), plus each image's covered pixels (B,): where some slot's mask is above 0.5."""
        b, s = geom.shape[:2]
        slot_id = torch.eye(s, device=geom.device).expand(b, s, s)
        x = torch.cat([geom, z[:, None, :].expand(b, s, -1), slot_id], dim=2).reshape(b * s, -1)
        masks = torch.sigmoid(self.decoder(x) * sharpness).view(b, s, 1, self.cfg.canvas, self.cfg.canvas)
        cover = (masks.amax(dim=1) > 0.5).sum(dim=(1, 2, 3))
        return composite(masks, torch.sigmoid(self.colour(colour))), cover

    def forward(self, ids, lengths, image):
        """Training pass: (reconstruction from posterior z, drawing from prior z, KL (B,), gates);
        images (B, 3, H, W)."""
        geom, colour, gates, summary = self.encoder(ids, lengths)
        mu, logvar = self.posterior(image, summary)
        z, kl = sample_posterior(self.cfg.latent, mu, logvar)
        z_prior = sample_prior(self.cfg.latent, mu.shape[0], self.cfg.z_dim, None).to(mu.device)
        both = self.draw(torch.cat([geom, geom]), torch.cat([colour, colour]), torch.cat([z, z_prior]))
        recon, prior = both.chunk(2)
        return recon, prior, kl, gates

    @torch.no_grad()
    def generate(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        z: torch.Tensor,
        redraw_noise: Callable[[torch.Tensor, int], torch.Tensor],
    ) -> torch.Tensor:
        """ids (B, T), z (B, Z) drawn from the prior N(0, I) -> images (B, 3, canvas, canvas) in [0, 1].

        With ``cfg.redraws``, rows whose drawing is (nearly) empty are drawn again with
        ``redraw_noise(row indices, attempt)``, seeded by the caller so images stay reproducible."""
        geom, colour, _, _ = self.encoder(ids, lengths)
        images, cover = self.draw_with_cover(geom, colour, z, self.cfg.mask_sharpness)
        for attempt in range(1, self.cfg.redraws + 1):
            rows = (cover < self.cfg.min_cover_pixels).nonzero().squeeze(1)
            if rows.numel() == 0:
                break
            fresh = redraw_noise(rows, attempt).to(z)
            images[rows], cover[rows] = self.draw_with_cover(geom[rows], colour[rows], fresh, self.cfg.mask_sharpness)
        return images
