"""The oracle: parse an image of the shapes world back into objects.

Each pixel takes the nearest palette colour (black = background); 4-connected foreground
components are objects; each component's colour is its majority colour, and its shape, size
and grid cell are those of the best-matching exact template (highest IoU among 4 shapes x 2
sizes x 9 cells). On ground-truth renders this is exact; on generated images it tolerates
blur and colour drift, and reports low-IoU blobs as unrecognised (shape None).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lstmq.worker.shapes.world import BACKGROUND, COLOURS, SHAPES, SIZES, Obj, render

PALETTE_NAMES = ("background", *COLOURS)
PALETTE = np.array([BACKGROUND, *COLOURS.values()], dtype=np.float32)  # (9, 3)
MIN_OBJECT_PIXELS = 24  # smaller specks are noise (the smallest object has ~98 pixels)
MIN_TEMPLATE_IOU = 0.5  # below this a blob is not a recognisable shape


@dataclass(frozen=True)
class Found:
    colour: str
    shape: str | None
    size: str | None
    row: int | None
    col: int | None
    iou: float
    pixels: int


@lru_cache(maxsize=1)
def templates() -> tuple[list[Obj], np.ndarray]:
    """Every single-object drawing and its mask: (72,) objects, (72, 4096) bool."""
    objs = [
        Obj("white", shape, size, row, col)
        for shape in SHAPES
        for size in SIZES
        for row in range(3)
        for col in range(3)
    ]
    masks = np.stack([np.asarray(render([o])).max(axis=2).reshape(-1) > 0 for o in objs])
    return objs, masks


def palette_labels(image: np.ndarray) -> np.ndarray:
    """(64, 64, 3) uint8 -> (64, 64) index into PALETTE_NAMES (0 = background)."""
    pixels = image.astype(np.float32)[:, :, None, :]  # (H, W, 1, 3)
    return ((pixels - PALETTE) ** 2).sum(axis=-1).argmin(axis=-1)


def components(foreground: np.ndarray) -> np.ndarray:
    """4-connected component labels of a bool (H, W) mask (0 = background), by min-label flooding."""
    h, w = foreground.shape
    big = h * w + 1
    labels = np.where(foreground, np.arange(1, h * w + 1).reshape(h, w), big)
    while True:
        padded = np.pad(labels, 1, constant_values=big)
        neighbours = np.minimum.reduce(
            [padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:], labels]
        )
        new = np.where(foreground, neighbours, big)
        if np.array_equal(new, labels):
            return np.where(foreground, labels, 0)
        labels = new


def classify_blob(mask: np.ndarray, colour_labels: np.ndarray) -> Found:
    objs, masks = templates()
    flat = mask.reshape(-1)
    inter = masks[:, flat].sum(axis=1)
    iou = inter / (masks.sum(axis=1) + flat.sum() - inter)
    best = int(iou.argmax())
    colour = PALETTE_NAMES[int(np.bincount(colour_labels[mask]).argmax())]
    if iou[best] < MIN_TEMPLATE_IOU:
        return Found(colour, None, None, None, None, float(iou[best]), int(flat.sum()))
    o = objs[best]
    return Found(colour, o.shape, o.size, o.row, o.col, float(iou[best]), int(flat.sum()))


def parse(image) -> list[Found]:
    """The objects in an image (PIL image or (64, 64, 3) uint8 array), largest first."""
    array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    colour_labels = palette_labels(array)
    labels = components(colour_labels > 0)
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    blobs = [
        labels == i for i, n in sorted(zip(ids, counts, strict=True), key=lambda t: -t[1]) if n >= MIN_OBJECT_PIXELS
    ]
    return [classify_blob(mask, colour_labels) for mask in blobs]
