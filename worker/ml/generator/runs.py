"""``lstmq train generator``: data -> training with a progress bar -> artifact -> oracle eval -> card."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lstmq.errors import InputError
from lstmq.modelstore import valid_name
from lstmq.worker.ml.artifacts import update_config
from lstmq.worker.ml.generator.artifact import save_generator
from lstmq.worker.ml.generator.calibrate import calibrate_generation
from lstmq.worker.ml.generator.data import FilePairs, WorldPairs
from lstmq.worker.ml.generator.inference import ImageGenerator, from_artifact
from lstmq.worker.ml.generator.train import TrainOptions, train
from lstmq.worker.shapes.evaluation import evaluate
from lstmq.worker.shapes.report import write_card


def world_report(model, tokenizer, max_tokens: int, n: int) -> dict:
    generator = ImageGenerator("", "", model, tokenizer, max_tokens, torch.device("cpu"))
    return evaluate(generator.images, n=n)


def artifact_report(path: Path, n: int) -> dict:
    """The oracle evaluation of the artifact as stored (fp16 weights, calibrated temperature)."""
    return evaluate(from_artifact(path).images, n=n)


def quick_eval_line(step: int, model, tokenizer, max_tokens: int) -> str:
    report = world_report(model, tokenizer, max_tokens, n=100)
    exact = " ".join(f"{s} {report[s]['exact']:.0%}" for s in ("one_object", "two_object", "held_out"))
    return f"step {step}: oracle exact (n=100) {exact}"


def run_training(
    name: str,
    data: Path | None,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    arch: dict,
    eval_n: int,
    threads: int,
    out: Path,
    prior_weight: float = 0.03,
    recon_weight: float = 0.05,
    eval_every: int = 0,
) -> Path:
    if not valid_name(name):
        raise InputError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    if arch.get("latent", "gaussian") not in ("gaussian", "categorical"):
        raise InputError("--latent must be gaussian or categorical")
    torch.set_num_threads(threads)
    opts = TrainOptions(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        prior_weight=prior_weight,
        recon_weight=recon_weight,
        eval_every=eval_every or steps,
    )
    pairs = FilePairs(data, seed) if data else WorldPairs(seed)
    started = time.monotonic()
    with Progress(
        TextColumn("training {task.fields[name]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.1f} sse {task.fields[sse]:.1f} kl {task.fields[kl]:.2f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ) as progress:
        bar = progress.add_task("train", total=steps, name=name, loss=0.0, sse=0.0, kl=0.0)

        def on_eval(step, model, tokenizer):
            if eval_every and step < steps:  # a checkpoint is an artifact: usable if training stops
                save_generator(
                    out,
                    copy.deepcopy(model),
                    tokenizer,
                    opts.max_tokens,
                    extra={"training": {**opts.to_dict(), "checkpoint_step": step}},
                )
                if data is None:
                    progress.console.print(quick_eval_line(step, model, tokenizer, opts.max_tokens))

        model, tokenizer = train(
            pairs,
            opts,
            arch=arch,
            on_eval=on_eval,
            on_step=lambda step, t: progress.update(bar, completed=step, **{k: t[k] for k in ("loss", "sse", "kl")}),
        )
    minutes = (time.monotonic() - started) / 60
    source = str(data) if data else "shapes world (held-out colour-shape pairs excluded)"
    extra = {
        "training": {
            **opts.to_dict(),
            "data": source,
            "minutes": round(minutes, 1),
            "command": command_line(name, data, opts, arch, eval_every),
        }
    }
    path = save_generator(out, model, tokenizer, opts.max_tokens, extra=extra)
    if data is None and eval_n > 0:
        return finish_world_artifact(path, name, eval_n)
    write_card(path, name, extra["training"], None)
    return path


def command_line(name: str, data: Path | None, opts: TrainOptions, arch: dict, eval_every: int) -> str:
    """The `lstmq train generator` invocation that reproduces this training run."""
    parts = [
        f"lstmq train generator --name {name}",
        f"--steps {opts.steps}",
        f"--batch-size {opts.batch_size}",
        f"--lr {opts.lr}",
        f"--seed {opts.seed}",
        f"--prior-weight {opts.prior_weight}",
        f"--recon-weight {opts.recon_weight}",
    ]
    parts += [f"--{k.replace('_', '-')} {v}" for k, v in sorted(arch.items())]
    parts += [f"--data {data}"] if data else []
    parts += [f"--eval-every {eval_every}"] if eval_every else []
    return " ".join(parts)


def finish_world_artifact(path: Path, name: str, eval_n: int) -> Path:
    """Calibrate generation settings, evaluate the stored artifact, record metrics and card."""
    calibrate_generation(path)
    report = artifact_report(path, eval_n)
    update_config(path, metrics=summary(report))
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    arch = config["architecture"]
    redraw = (
        f", empty drawings (< {arch['min_cover_pixels']} px) redrawn up to {arch['redraws']} times"
        if arch.get("redraws")
        else ""
    )
    training = {
        **config["training"],
        "generation": f"temperature {arch['temperature']}, "
        f"mask sharpness {arch['mask_sharpness']}{redraw} (chosen on validation captions: see config.json)",
    }
    write_card(path, name, training, report)
    return path


def summary(report: dict) -> dict:
    """The headline numbers stored in config.json (``lstmq models`` shows them)."""
    out = {f"{s}_exact": report[s]["exact"] for s in ("one_object", "two_object", "held_out")}
    out.update({f"diversity_{a}": d["ratio"] for a, d in report["diversity"].items()})
    return out
