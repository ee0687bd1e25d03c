"""A small generator artifact for render tests (untrained weights: the plumbing is under test).
Imports torch: only test modules that skip without torch import this."""

from __future__ import annotations

from pathlib import Path

import torch

from lstmq.worker.ml.generator.artifact import save_generator
from lstmq.worker.ml.generator.data import WorldPairs
from lstmq.worker.ml.generator.model import Generator, GeneratorConfig
from lstmq.worker.ml.tokenizer import train_tokenizer

TINY_NAME = "shapes-tiny"


def make_tiny_generator(folder: Path, name: str = TINY_NAME) -> Path:
    torch.manual_seed(0)
    tokenizer = train_tokenizer(WorldPairs(0).captions_for_vocabulary(), kind="word", min_frequency=1)
    model = Generator(GeneratorConfig(vocab_size=tokenizer.get_vocab_size(), hidden_dim=16, decoder_dim=32))
    with torch.no_grad():
        model.decoder.bias.fill_(0.0)  # untrained but visibly drawing something
    return save_generator(folder / name, model.eval(), tokenizer, max_tokens=32)
