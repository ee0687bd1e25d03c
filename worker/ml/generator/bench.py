"""In-process image generation speed, the baseline of the render benchmark.

``lstmq bench`` compares it with end-to-end throughput (queue, worker, PNG files, database)
measured in the same process run; the target ratio end-to-end / in-process is >= 0.7.
"""

from __future__ import annotations

import random
import time

from worker.images import encode_png
from worker.ml.generator.inference import load_image_generator
from worker.shapes.captions import sample_scene

WARMUP_IMAGES = 32


def bench_captions(n: int, seed: int = 0) -> list[str]:
    """``n`` world captions, half one-object and half two-object, any colour-shape pair."""
    rng = random.Random(seed)
    return [sample_scene(rng, 1 + i % 2, held_out=None).caption for i in range(n)]


def inprocess_images_per_second(
    model: str = "shapes", n: int = 1024, device: str = "auto", png: bool = False, seed: int = 0
) -> dict:
    """Captions -> tokenize -> generate (-> PNG bytes when ``png``), timed after a warm-up.

    Returns {"images", "seconds", "images_per_s", "device", "png"}.
    """
    generator = load_image_generator(model, device=device)
    captions = bench_captions(n, seed)
    generator.render(captions[:WARMUP_IMAGES], list(range(WARMUP_IMAGES)))
    start = time.perf_counter()
    rendered = generator.render(captions, list(range(n)))
    if png:
        for r in rendered:
            encode_png(r.image)
    seconds = time.perf_counter() - start
    return {
        "images": n,
        "seconds": round(seconds, 4),
        "images_per_s": round(n / seconds, 1),
        "device": str(generator.device),
        "png": png,
    }
