"""Training the generator as a conditional VAE: reconstruct the image from caption + posterior z.

loss = recon_weight * SSE(decode(caption, z ~ q(z | image, caption)), image)   (Gaussian likelihood)
     + recon_weight * prior_weight * SSE(decode(caption, z ~ N(0, I)), image)
     + beta * KL(q(z | image, caption) || N(0, I))           (beta warms up 0 -> 1)
     + gate_l1 * sum of word->slot gates                      (each slot reads only the words it needs)

The KL term makes z carry only what the caption leaves open (size, position). The second
term (the hybrid objective of Sohn et al., NeurIPS 2015) trains on what generation actually
does, z drawn from the prior: without it the decoder learns to read stated attributes (even
shape) from the posterior's z and draws them wrong from prior noise. Everything is seeded.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from lstmq.worker.ml.batching import pad
from lstmq.worker.ml.generator.model import Generator, GeneratorConfig
from lstmq.worker.ml.tokenizer import encode_batch, train_tokenizer


@dataclass
class TrainOptions:
    steps: int = 12000
    batch_size: int = 64
    lr: float = 2e-3
    min_lr: float = 1e-4  # cosine decay floor
    seed: int = 0
    recon_weight: float = 0.05
    prior_weight: float = 0.03  # GSNN term (Sohn et al. 2015): draw from z ~ N(0, I) too
    kl_warmup: float = 0.02  # share of steps over which beta rises to 1
    gate_l1: float = 0.05
    max_tokens: int = 32
    eval_every: int = 1000

    def to_dict(self) -> dict:
        return asdict(self)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def encode(tokenizer, captions: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """captions -> ids (B, T) padded, lengths (B,)."""
    ids = [e.ids or [1] for e in encode_batch(tokenizer, captions, max_tokens)]
    return torch.tensor(pad(ids)), torch.tensor([len(x) for x in ids])


def loss_terms(model: Generator, ids, lengths, images, beta: float, opts: TrainOptions) -> dict:
    recon, prior, kl, gates = model(ids, lengths, images)
    sse = ((recon - images) ** 2).sum(dim=(1, 2, 3)).mean()
    prior_sse = ((prior - images) ** 2).sum(dim=(1, 2, 3)).mean()
    kl = kl.mean()
    l1 = gates.sum(dim=(1, 2, 3)).mean()
    total = opts.recon_weight * (sse + opts.prior_weight * prior_sse) + beta * kl + opts.gate_l1 * l1
    return {"loss": total, "sse": sse, "prior_sse": prior_sse, "kl": kl, "gates": l1}


def learning_rate(step: int, opts: TrainOptions) -> float:
    progress = step / max(1, opts.steps)
    return opts.min_lr + 0.5 * (opts.lr - opts.min_lr) * (1 + np.cos(np.pi * progress))


def train(
    pairs,
    opts: TrainOptions,
    arch: dict | None = None,
    on_step: Callable[[int, dict], None] | None = None,
    on_eval: Callable[[int, Generator, object], None] | None = None,
):
    """Train on ``pairs`` (WorldPairs or FilePairs); returns (model, tokenizer)."""
    seed_everything(opts.seed)
    tokenizer = train_tokenizer(pairs.captions_for_vocabulary(), kind="word", min_frequency=1)
    model = Generator(GeneratorConfig(vocab_size=tokenizer.get_vocab_size(), **(arch or {})))
    optim = torch.optim.Adam(model.parameters(), lr=opts.lr)
    for step in range(1, opts.steps + 1):
        for group in optim.param_groups:
            group["lr"] = learning_rate(step, opts)
        captions, images = pairs.batch(opts.batch_size)
        ids, lengths = encode(tokenizer, captions, opts.max_tokens)
        beta = min(1.0, step / max(1, opts.kl_warmup * opts.steps))
        terms = loss_terms(model.train(), ids, lengths, images, beta, opts)
        optim.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optim.step()
        if on_step:
            on_step(step, {k: float(v.detach()) for k, v in terms.items()})
        if on_eval and (step % opts.eval_every == 0 or step == opts.steps):
            on_eval(step, model.eval(), tokenizer)
    return model.eval(), tokenizer
