"""Generation API for the worker, the CLI and evaluation: captions in, uint8 images out.

What each awkward caption gets (never an exception for one bad text):

=================================  ===============================================================
empty or whitespace-only text      ``error="empty text"``: no image, the document fails
longer than ``max_tokens`` tokens  drawn from its first ``max_tokens`` tokens, flag ``truncated``
some words unknown to the model    drawn from the known words, flag ``unknown_words``
mostly unknown (< half known,      drawn anyway, flags ``unknown_words`` + ``out_of_domain``
e.g. a news article)               (the picture means little; the flag says so)
=================================  ===============================================================

Noise is seeded per caption (``seeds``), so an image depends only on its caption, its seed
and the model version: a redelivered batch redraws identical pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from lstmq.worker.ml.batching import pad, plan_batches, scatter
from lstmq.worker.ml.cache import ModelCache
from lstmq.worker.ml.device import resolve_device
from lstmq.worker.ml.generator.artifact import load_generator_artifact, to_uint8
from lstmq.worker.ml.generator.model import sample_prior
from lstmq.worker.ml.tokenizer import UNK_ID, encode_batch

# Captions per forward pass. On CPU 64 was fastest per image (4,300 images/s against 2,950 at
# 256, 1 thread: the activations stay in cache); a GPU wants large batches.
BATCH_IMAGES = {"cpu": 64, "cuda": 256}
OUT_OF_DOMAIN_KNOWN_SHARE = 0.5  # below this share of known tokens a caption is out of domain


@dataclass
class Rendered:
    image: np.ndarray | None  # (H, W, 3) uint8
    flags: list[str] = field(default_factory=list)
    error: str | None = None


def flags_of(enc) -> list[str]:
    flags = ["truncated"] if enc.truncated else []
    unknown = sum(i == UNK_ID for i in enc.ids)
    if unknown:
        flags.append("unknown_words")
    if unknown > OUT_OF_DOMAIN_KNOWN_SHARE * len(enc.ids):
        flags.append("out_of_domain")
    return flags


def noise(seeds: Sequence[int], z_dim: int, latent: str = "gaussian") -> torch.Tensor:
    """(B, Z) prior noise, row i drawn from its own seed (independent of batch order)."""
    rows = [sample_prior(latent, 1, z_dim, torch.Generator().manual_seed(int(s) % (2**63)))[0] for s in seeds]
    return torch.stack(rows) if rows else torch.zeros(0, z_dim)


def redraw_seed(seed: int, attempt: int) -> int:
    """The noise seed of a caption's ``attempt``-th redraw: fixed, so redrawing stays deterministic."""
    return (int(seed) + attempt * 0x9E3779B97F4A7C15) % (2**63)


class ImageGenerator:
    def __init__(
        self, name: str, version: str, model, tokenizer, max_tokens: int, device: torch.device, temperature: float = 1.0
    ):
        self.name, self.version, self.max_tokens, self.device = name, version, max_tokens, device
        self.temperature = temperature  # scales the prior noise; < 1 trades variety for typical samples
        self.model, self.tokenizer = model.to(device).eval(), tokenizer
        self.z_dim, self.batch_images = model.cfg.z_dim, BATCH_IMAGES.get(device.type, 256)

    def render(self, texts: Sequence[str], seeds: Sequence[int]) -> list[Rendered]:
        """One Rendered per text, in input order."""
        out: list[Rendered | None] = [
            None if isinstance(t, str) and t.strip() else Rendered(None, error="empty text") for t in texts
        ]
        todo = [i for i, r in enumerate(out) if r is None]
        encoded = encode_batch(self.tokenizer, [texts[i] for i in todo], self.max_tokens)
        images = self.draw([e.ids or [UNK_ID] for e in encoded], [seeds[i] for i in todo])
        for i, enc, image in zip(todo, encoded, images, strict=True):
            out[i] = Rendered(image, flags_of(enc))
        return out

    def draw(self, ids: list[list[int]], seeds: Sequence[int]) -> list[np.ndarray]:
        batches = plan_batches([len(x) for x in ids], self.batch_images)
        parts = [self._forward([ids[i] for i in b], [seeds[i] for i in b]) for b in batches]
        return scatter(batches, parts, len(ids))

    def _forward(self, ids: list[list[int]], seeds: Sequence[int]) -> list[np.ndarray]:
        lengths = torch.tensor([len(x) for x in ids])
        batch = torch.tensor(pad(ids), device=self.device)  # (B, T)

        def seeded_noise(row_seeds) -> torch.Tensor:
            z = noise(row_seeds, self.z_dim, self.model.cfg.latent).to(self.device)  # (B, Z)
            return z * self.temperature if self.model.cfg.latent == "gaussian" else z

        def redraw_noise(rows: torch.Tensor, attempt: int) -> torch.Tensor:
            return seeded_noise([redraw_seed(seeds[i], attempt) for i in rows.tolist()])

        with torch.inference_mode():
            return to_uint8(self.model.generate(batch, lengths, seeded_noise(seeds), redraw_noise))

    def images(self, captions: Sequence[str], seed: int) -> list[np.ndarray]:
        """Evaluation helper: row i uses seed (seed, i)."""
        rendered = self.render(list(captions), [seed * 1_000_003 + i for i in range(len(captions))])
        return [r.image for r in rendered]


def from_artifact(path, name: str = "", version: str = "", device: str = "cpu") -> ImageGenerator:
    model, tokenizer, config = load_generator_artifact(path)
    return ImageGenerator(
        name or path.name,
        version,
        model,
        tokenizer,
        config["max_tokens"],
        resolve_device(device),
        model.cfg.temperature,
    )


_MODELS = ModelCache()


def load_image_generator(name: str, device: str = "auto") -> ImageGenerator:
    """The named generator, loaded once per process per (name, device), again when it is replaced."""
    dev = str(resolve_device(device))
    return _MODELS.get(name, dev, lambda info: from_artifact(info.path, info.name, info.version, dev))
