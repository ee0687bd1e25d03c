"""The inference API the worker calls: load a classifier once, then ``predict`` batches of texts.

What each awkward input gets (never an exception for one bad text):

=============================  =========================================================
empty or whitespace-only text  ``error="empty text"``, no label (the document fails)
not a string                   ``error="text is not a string"``
longer than ``max_tokens``     classified from its first ``max_tokens`` tokens, flag ``truncated``
no known tokens (all [UNK])    classified anyway (the model's prior-like guess), flag ``no_known_tokens``
=============================  =========================================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from lstmq import stages
from lstmq.modelstore import ModelInfo
from lstmq.worker.ml.batching import pad, plan_batches, scatter
from lstmq.worker.ml.cache import ModelCache
from lstmq.worker.ml.classifier.artifact import load_artifact
from lstmq.worker.ml.coalesce import Coalescer
from lstmq.worker.ml.device import resolve_autocast, resolve_device
from lstmq.worker.ml.tokenizer import UNK_ID, encode_batch

BATCH_DOCS = 256  # documents per forward pass on CPU (larger passes buy a CPU nothing)
BATCH_CELLS = 256 * 128  # documents x padded length per forward pass: bounds memory
# On a GPU a pass of a few thousand documents costs about what one of 256 does: the batches
# in flight are merged (``lstmq.worker.ml.coalesce``) into passes of up to this many, token-budgeted.
CUDA_BATCH_DOCS = 4096
CUDA_BATCH_CELLS = 4096 * 64


@dataclass
class Prediction:
    label: str | None
    score: float | None
    probs: list[float] | None  # in Classifier.labels order
    flags: list[str] = field(default_factory=list)
    error: str | None = None


class Classifier:
    def __init__(
        self,
        name: str,
        version: str,
        model,
        tokenizer,
        labels: list[str],
        max_tokens: int,
        device: torch.device,
        autocast_dtype: torch.dtype | None = None,
    ):
        self.name, self.version, self.labels, self.max_tokens = name, version, list(labels), max_tokens
        self.device, self.autocast_dtype = device, autocast_dtype
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        cuda = device.type == "cuda"
        self.batch_docs, self.batch_cells = (CUDA_BATCH_DOCS, CUDA_BATCH_CELLS) if cuda else (BATCH_DOCS, BATCH_CELLS)
        # The threads of a worker share this model: their batches' passes are merged.
        self._passes = Coalescer(self._probs, max_items=self.batch_docs)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One Prediction per text, in input order. Tokenizing happens in the caller's thread;
        the model's passes are shared with the other threads' batches."""
        results: list[Prediction | None] = [_reject(t) for t in texts]
        todo = [i for i, r in enumerate(results) if r is None]
        with stages.timed("tokenize", len(todo)):  # a part of the worker's "model" stage
            encoded = encode_batch(self.tokenizer, [texts[i] for i in todo], self.max_tokens)
        ids = [e.ids or [UNK_ID] for e in encoded]
        probs = self._passes(ids) if ids else []
        for i, enc, p in zip(todo, encoded, probs, strict=True):
            results[i] = self._prediction(p, _flags(enc))
        return results

    def _probs(self, ids: list[list[int]]) -> list[list[float]]:
        batches = plan_batches([len(x) for x in ids], self.batch_docs, self.batch_cells)
        return scatter(batches, [self._forward([ids[i] for i in b]) for b in batches], len(ids))

    def _forward(self, ids: list[list[int]]) -> list[list[float]]:
        lengths = torch.tensor([len(x) for x in ids])  # stays on the CPU (pack_padded_sequence)
        batch = torch.tensor(pad(ids))  # (B, T)
        if self.device.type == "cuda":  # page-locked: the copy runs asynchronously, by DMA
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        amp = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), amp:
            return self.model(batch, lengths).float().cpu().tolist()  # (B, C): one copy back per pass

    def _prediction(self, probs: list[float], flags: list[str]) -> Prediction:
        best = probs.index(max(probs))  # the first of equals, as max(range, key=...) took it
        return Prediction(self.labels[best], probs[best], probs, flags)


def _reject(text) -> Prediction | None:
    if not isinstance(text, str):
        return Prediction(None, None, None, error="text is not a string")
    if not text.strip():
        return Prediction(None, None, None, error="empty text")
    return None


def _flags(enc) -> list[str]:
    flags = ["truncated"] if enc.truncated else []
    if not enc.ids or enc.all_unknown:
        flags.append("no_known_tokens")
    return flags


_MODELS = ModelCache()


def load_classifier(name: str, device: str = "auto", autocast: str = "auto") -> Classifier:
    """The named model, loaded once per process per (name, device), again when it is replaced."""
    dev = resolve_device(device)
    return _MODELS.get(name, str(dev), lambda info: _from_info(info, dev, resolve_autocast(autocast, dev)))


def _from_info(info: ModelInfo, device: torch.device, autocast_dtype: torch.dtype | None) -> Classifier:
    model, tokenizer, _ = load_artifact(info.path)
    return Classifier(info.name, info.version, model, tokenizer, info.labels, info.max_tokens, device, autocast_dtype)


def clear_cache() -> None:
    _MODELS.clear()
