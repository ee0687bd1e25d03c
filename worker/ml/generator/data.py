"""Training pairs for the generator: drawn from the shapes world, or read from a user's JSONL.

A user dataset is JSON Lines of ``{"text": caption, "image": path}``; relative image paths
are taken from the JSONL file's folder. Images are converted to RGB and resized to the canvas.
"""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lstmq.errors import InputError
from lstmq.worker.shapes.captions import training_scenes, vocabulary
from lstmq.worker.shapes.world import Obj, render


def to_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    """list of (H, W, 3) uint8 -> (B, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0


@cache
def object_pixels(obj: Obj) -> np.ndarray:
    """One object's exact render, cached: a scene is the sum of its (never overlapping) objects."""
    return np.asarray(render([obj]))


class WorldPairs:
    """Endless seeded training pairs from the shapes world (held-out pairs never appear)."""

    def __init__(self, seed: int):
        self.scenes = training_scenes(seed)

    def batch(self, size: int) -> tuple[list[str], torch.Tensor]:
        scenes = [next(self.scenes) for _ in range(size)]
        return [s.caption for s in scenes], to_tensor([sum(object_pixels(o) for o in s.objects) for s in scenes])

    def captions_for_vocabulary(self) -> list[str]:
        return [" ".join(vocabulary())]


class FilePairs:
    """A user's captioned images, held in memory as uint8, sampled with a seeded RNG."""

    def __init__(self, jsonl: Path, seed: int, canvas: int = 64):
        self.texts, self.images = read_pairs(jsonl, canvas)
        self.rng = random.Random(seed)

    def batch(self, size: int) -> tuple[list[str], torch.Tensor]:
        picks = [self.rng.randrange(len(self.texts)) for _ in range(size)]
        return [self.texts[i] for i in picks], to_tensor([self.images[i] for i in picks])

    def captions_for_vocabulary(self) -> list[str]:
        return self.texts


def read_pairs(jsonl: Path, canvas: int) -> tuple[list[str], list[np.ndarray]]:
    texts, images = [], []
    with jsonl.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            text, image_path = parse_record(jsonl, line_no, line)
            texts.append(text)
            images.append(load_image(jsonl.parent / image_path, canvas, f"{jsonl}:{line_no}"))
    if not texts:
        raise InputError(f"{jsonl}: no records")
    return texts, images


def parse_record(jsonl: Path, line_no: int, line: str) -> tuple[str, str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{jsonl}:{line_no}: not JSON ({exc.msg})") from None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("text"), str)
        or not isinstance(record.get("image"), str)
    ):
        raise InputError(f'{jsonl}:{line_no}: expected {{"text": str, "image": str}}')
    if not record["text"].strip():
        raise InputError(f"{jsonl}:{line_no}: empty text")
    return record["text"], record["image"]


def load_image(path: Path, canvas: int, where: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (canvas, canvas):
                im = im.resize((canvas, canvas), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise InputError(f"{where}: image {path} not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{where}: image {path} unreadable ({exc})") from None
