"""Generated images -> PNG files under ``LSTMQ_IMAGE_DIR``, in a layout that holds millions.

Layout (relative to the image dir, which is what the database stores)::

    <model>/<version>/<h[0:2]>/<h[2:4]>/<document id>.png      h = sha256 of the document id

Two levels of 256 shards keep every folder small (10 M images -> ~150 files per folder). No
part of a path comes raw from user input: the model name must pass the model-name pattern, the
version is a hex content hash, and the file name is the integer document id. Files are written
to a temporary name and renamed, so a redelivered batch replaces the same file atomically and a
reader never sees half a PNG.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmq.errors import ConfigError
from lstmq.modelstore import valid_name

PNG_COMPRESS_LEVEL = 1  # small flat images: level 1 is ~3x faster than 6 and barely larger
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_VERSION = re.compile(r"^[0-9a-f]{1,64}$")


@dataclass(frozen=True)
class StoredImage:
    path: str  # relative to the image dir, "/"-separated
    width: int
    height: int
    sha256: str


def relative_path(model: str, version: str, document_id: int) -> str:
    if not valid_name(model):
        raise ConfigError(f"model name {model!r} cannot be part of an image path")
    if not _VERSION.match(version):
        raise ConfigError(f"model version {version!r} is not a hex id")
    doc = int(document_id)
    if doc < 0:
        raise ValueError("document ids are non-negative")
    h = hashlib.sha256(str(doc).encode()).hexdigest()
    return f"{model}/{version}/{h[:2]}/{h[2:4]}/{doc}.png"


def encode_png(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes (deterministic for identical pixels).

    The three chunks a truecolour PNG needs, written with zlib: for a 64x64 image Pillow's
    per-call machinery (image object, plugin, chunk writer) took 4x the time of the compression
    itself, and storing PNGs was most of a render batch. Pillow decodes these in the tests."""
    height, width, channels = image.shape
    if channels != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    rows = np.zeros((height, 1 + width * 3), dtype=np.uint8)  # each row: filter type 0, then RGB
    rows[:, 1:] = np.asarray(image, dtype=np.uint8).reshape(height, width * 3)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_COMPRESS_LEVEL)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_atomic(target: Path, data: bytes) -> None:
    # The temporary name is unique to this process and thread, so no other writer shares it
    # (mkstemp's random names cost more than the write); one left by a crash is overwritten.
    tmp = target.with_name(f".tmp-{target.stem}-{os.getpid()}-{threading.get_ident()}.png")
    try:
        try:
            fh = open(tmp, "wb")  # noqa: SIM115 - closed below
        except FileNotFoundError:  # a new shard folder: made only then, not checked per image
            target.parent.mkdir(parents=True, exist_ok=True)
            fh = open(tmp, "wb")  # noqa: SIM115
        with fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def store_image(root: Path, model: str, version: str, document_id: int, image: np.ndarray) -> StoredImage:
    """Write one image as PNG; returns what the images table records."""
    rel = relative_path(model, version, document_id)  # checked parts only: cannot leave root
    target = root / rel
    data = encode_png(image)
    write_atomic(target, data)
    height, width = image.shape[:2]
    return StoredImage(rel, width, height, hashlib.sha256(data).hexdigest())


def absolute(root: Path, rel: str) -> Path:
    """The file of a stored relative path, refusing anything that leaves ``root``."""
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ConfigError(f"image path {rel!r} escapes the image dir")
    return target
