"""``lstmq render / eval-images / contact-sheet / train generator``: thin commands.

torch is imported inside the commands that run a model, never at import time.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from PIL import Image

from lstmq.db.engine import ready_engine
from lstmq.errors import InputError
from lstmq.settings import get_settings
from lstmq.worker.images import encode_png
from lstmq.worker.shapes import sheet
from lstmq.worker.shapes.evaluation import EVAL_SEED, evaluate
from lstmq.worker.shapes.report import print_report


def _positive(value: int, name: str) -> int:
    if value <= 0:
        raise InputError(f"{name} must be a positive integer")
    return value


def _above_zero(value: float, name: str) -> float:
    if not value > 0:
        raise InputError(f"{name} must be greater than 0, not {value}")
    return value


def _generator(model: str, device: str):
    from lstmq.worker.ml.generator.inference import load_image_generator  # torch: only commands that draw load it

    return load_image_generator(model, device=device)


@click.command()
@click.argument("caption")
@click.option("--model", default="shapes", show_default=True, help="An installed generator.")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--seed", default=0, show_default=True, help="Noise seed: vary it to see what the caption leaves open.")
@click.option(
    "--samples", default=1, show_default=True, help="More than 1: a sheet of samples with seeds seed, seed+1, ..."
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
def render(caption, model, output, seed, samples, device) -> None:
    """Draw CAPTION with a generator model, in this process, into OUTPUT."""
    generator = _generator(model, device)
    results = generator.render([caption] * _positive(samples, "--samples"), [seed + i for i in range(samples)])
    if results[0].error:
        raise InputError(f"cannot render this caption: {results[0].error}")
    if samples == 1:
        Path(output).write_bytes(encode_png(results[0].image))
    else:
        samples_sheet = sheet.contact_sheet(
            [(f"seed {seed + i}", Image.fromarray(r.image)) for i, r in enumerate(results)], 8
        )
        samples_sheet.save(output)
    flags = f" (flags: {', '.join(results[0].flags)})" if results[0].flags else ""
    click.echo(f"wrote {output}: {model} {generator.version}{flags}")


@click.command("eval-images")
@click.option("--model", default="shapes", show_default=True)
@click.option("--n", "n", default=500, show_default=True, help="Captions per caption set.")
@click.option("--seed", default=None, type=int, help="Caption-set seed (default: the fixed evaluation seed).")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def eval_images(model, n, seed, device, as_json) -> None:
    """Score a generator with the shapes-world oracle: exact match per caption set, per-attribute
    accuracy, and how much what captions leave open varies."""
    generator = _generator(model, device)
    report = evaluate(generator.images, n=_positive(n, "--n"), seed=EVAL_SEED if seed is None else seed)
    report["model"], report["version"] = model, generator.version
    click.echo(json.dumps(report)) if as_json else print_report(report)


@click.command("contact-sheet")
@click.argument("job_id")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--limit", default=64, show_default=True, help="Images on the sheet (first documents).")
@click.option("--columns", default=8, show_default=True)
def contact_sheet(job_id, output, limit, columns) -> None:
    """A grid of JOB_ID's images with their captions."""
    rows = sheet.job_images(ready_engine(), job_id, _positive(limit, "--limit"))
    image = sheet.contact_sheet(sheet.load_items(get_settings().images, rows), _positive(columns, "--columns"))
    image.save(output)
    click.echo(f"wrote {output}: {len(rows)} images of job {job_id}")


@click.command("generator")
@click.option("--name", required=True, help="Model name (a folder under LSTMQ_MODEL_DIR).")
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False),
    help='JSONL of {"text", "image"} (image paths relative to the file); default: the shapes world.',
)
@click.option("--steps", default=5000, show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--slots", default=2, show_default=True, help="Objects an image can hold.")
@click.option(
    "--latent",
    default="gaussian",
    show_default=True,
    help="Noise for what captions leave open: gaussian (z-dim dims) or categorical (z-dim codes).",
)
@click.option("--z-dim", default=4, show_default=True)
@click.option("--hidden-dim", default=64, show_default=True, help="Caption LSTM units per direction.")
@click.option("--decoder-dim", default=256, show_default=True, help="Width of the mask decoder's MLP.")
@click.option("--rank", default=6, show_default=True, help="Separable terms of each mask's logit field.")
@click.option(
    "--eval-n", default=300, show_default=True, help="Captions per set in the final oracle evaluation (world data)."
)
@click.option(
    "--prior-weight",
    default=0.03,
    show_default=True,
    help="Weight of the loss on images drawn from prior noise (keeps stated attributes out of the noise).",
)
@click.option(
    "--recon-weight",
    default=0.05,
    show_default=True,
    help="Pixel-error weight against the KL term: lower makes the noise carry less (fewer empty samples).",
)
@click.option("--eval-every", default=0, show_default=True, help="Log a quick oracle score every N steps (world data).")
@click.option("--threads", default=1, show_default=True, help="torch CPU threads.")
@click.option("--out", type=click.Path(file_okay=False), help="Artifact folder (default LSTMQ_MODEL_DIR/NAME).")
def train_generator(
    name,
    data,
    steps,
    batch_size,
    lr,
    seed,
    slots,
    latent,
    z_dim,
    hidden_dim,
    decoder_dim,
    rank,
    prior_weight,
    recon_weight,
    eval_every,
    eval_n,
    threads,
    out,
) -> None:
    """Train a text-to-image generator on the shapes world (held-out pairs excluded) or on
    your own captioned images; writes the artifact and its MODEL_CARD.md."""
    from lstmq.worker.ml.generator.runs import run_training  # torch: loaded by this command only

    path = run_training(
        name=name,
        data=Path(data) if data else None,
        steps=_positive(steps, "--steps"),
        batch_size=_positive(batch_size, "--batch-size"),
        lr=_above_zero(lr, "--lr"),
        seed=seed,
        arch={
            "slots": _positive(slots, "--slots"),
            "latent": latent,
            "z_dim": _positive(z_dim, "--z-dim"),
            "hidden_dim": _positive(hidden_dim, "--hidden-dim"),
            "decoder_dim": _positive(decoder_dim, "--decoder-dim"),
            "rank": _positive(rank, "--rank"),
        },
        eval_n=eval_n,
        threads=_positive(threads, "--threads"),
        out=Path(out) if out else get_settings().user_model_dir / name,
        prior_weight=prior_weight,
        recon_weight=recon_weight,
        eval_every=eval_every,
    )
    click.echo(f"wrote {path}")
