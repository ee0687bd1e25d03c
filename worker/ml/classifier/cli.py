"""Thin click commands: ``lstmq train classifier``, ``train distill``, ``eval``, ``calibrate``,
``predict``, ``models``.

torch is imported inside the commands (via ``operations`` and ``runs``), so ``lstmq --help`` and
``lstmq models`` start without it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shlex
import sys
import tempfile
from dataclasses import MISSING
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from lstmq.db.engine import ready_engine, session_scope
from lstmq.errors import InputError
from lstmq.modelstore import scan_models
from lstmq.reviews import export
from lstmq.settings import get_settings
from lstmq.worker.ml.classifier.config import HELP, DistillConfig, TrainConfig, train_fields
from lstmq.worker.ml.classifier.metrics import ECE_BINS
from lstmq.worker.ml.progress import TrainProgress, print_models, print_report

FILE = click.Path(path_type=Path, dir_okay=False)
# The same input formats as `lstmq submit` (lstmq.readers): gzip by content, .json as JSON Lines.
FORMAT_OPTION = click.option(
    "--format", "fmt", metavar="FORMAT", help="jsonl, csv, tsv or txt; default from the file extension."
)


def _train_options(func):
    """One --option per TrainConfig field, defaults and types taken from the dataclass
    (a bool field is a --name/--no-name flag)."""
    for f in reversed(train_fields()):
        kind = {"int": int, "float": float, "str": str, "bool": bool}.get(str(f.type).split(" ")[0], int)
        default = None if f.default is MISSING else f.default
        flag = f.name.replace("_", "-")
        func = click.option(
            f"--{flag}/--no-{flag}" if kind is bool else f"--{flag}",
            f.name,
            type=kind,
            default=default,
            show_default=True,
            help=HELP.get(f.name),
        )(func)
    return func


def _run_options(func):
    """What every training command takes besides the hyper-parameters: data, output, device."""
    options = [
        click.option("--name", required=True, help="model name (the artifact directory's name)"),
        click.option("--train", "train_file", type=FILE, required=True, help="JSONL, CSV or TSV (optionally gzip)"),
        click.option("--dev", "dev_file", type=FILE, required=True, help="dev split: early stopping and metrics"),
        FORMAT_OPTION,
        click.option("--text-field", default="text", show_default=True),
        click.option("--label-field", default="label", show_default=True),
        click.option(
            "--out",
            type=click.Path(path_type=Path, file_okay=False),
            help="artifact directory (default: LSTMQ_MODEL_DIR/NAME, which shadows a shipped model of that name)",
        ),
        click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]"),
        click.option("--threads", type=int, help="torch CPU threads (default: torch's choice)"),
    ]
    func = _train_options(func)  # applied first, so listed after the options above
    for option in reversed(options):
        func = option(func)
    return func


@click.command("classifier")
@_run_options
@click.pass_context
def train_classifier(ctx, name, train_file, dev_file, fmt, text_field, label_field, out, device, threads, **hp):
    """Train an LSTM classifier on labelled text and write its artifact and model card."""
    from lstmq.worker.ml.classifier.operations import set_threads  # torch: this command only
    from lstmq.worker.ml.classifier.runs import train_and_save  # torch: this command only

    cfg = TrainConfig(**hp)  # a bad option is refused before anything is drawn or loaded
    set_threads(threads)
    out = out or get_settings().user_model_dir / name
    with TrainProgress() as progress:
        report = train_and_save(
            name,
            train_file,
            dev_file,
            out,
            cfg,
            device,
            (text_field, label_field),
            progress,
            _command_line(ctx),
            fmt,
        )
    click.echo(f"{name}: dev accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f} -> {out}")


@click.command("distill")
@click.option("--teacher", required=True, help="installed model whose probabilities the student learns")
@click.option(
    "--extra-text",
    "extra_files",
    type=FILE,
    multiple=True,
    help="unlabelled texts the teacher labels for the student (repeatable)",
)
@click.option(
    "--temperature",
    "soft_t",
    type=float,
    default=DistillConfig.temperature,
    show_default=True,
    help="softens the teacher's and student's probabilities in the distillation loss",
)
@click.option(
    "--alpha",
    type=float,
    default=DistillConfig.alpha,
    show_default=True,
    help="the teacher's share of the loss (the gold labels get 1 - alpha)",
)
@_run_options
@click.pass_context
def train_distill(
    ctx,
    teacher,
    extra_files,
    soft_t,
    alpha,
    name,
    train_file,
    dev_file,
    fmt,
    text_field,
    label_field,
    out,
    device,
    threads,
    **hp,
):
    """Train a student classifier on a teacher model's probabilities (and the gold labels)."""
    from lstmq.worker.ml.classifier.operations import set_threads  # torch: this command only
    from lstmq.worker.ml.classifier.runs import distill_and_save  # torch: this command only

    cfg = TrainConfig(**hp)  # a bad option is refused before anything is drawn or loaded
    set_threads(threads)
    out = out or get_settings().user_model_dir / name
    with TrainProgress() as progress:
        report = distill_and_save(
            name,
            teacher,
            (train_file, dev_file, extra_files),
            out,
            cfg,
            DistillConfig(soft_t, alpha),
            device,
            (text_field, label_field),
            progress,
            _command_line(ctx),
            fmt,
        )
    click.echo(f"{name}: dev accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f} -> {out}")


def _command_line(ctx: click.Context) -> str:
    """The command as given, minus options left at their defaults (recorded in the model card)."""
    parts = ctx.command_path.split()
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            if value is not None:  # an optional argument left out (calibrate --reviews)
                parts.append(str(value))
        elif isinstance(param, click.Option) and value is not None and value != param.default:
            parts += _given(param, value)
    return shlex.join(parts)


def _given(option: click.Option, value) -> list[str]:
    if option.is_bool_flag:
        return [option.opts[0]] if value else option.secondary_opts[:1]  # a plain flag left off: nothing
    values = value if option.multiple else [value]
    return [part for v in values for part in (option.opts[0], str(v))]


@click.command("eval")
@click.option("--model", required=True, help="installed model name")
@click.argument("file", type=FILE)
@click.option("--json", "as_json", is_flag=True, help="print the full report as JSON")
@FORMAT_OPTION
@click.option("--text-field", default="text", show_default=True)
@click.option("--label-field", default="label", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, help="torch CPU threads (default: torch's choice)")
def evaluate(model, file, as_json, fmt, text_field, label_field, device, threads):
    """Accuracy, macro-F1, per-class precision/recall/F1 and confusion matrix on a labelled FILE."""
    from lstmq.worker.ml.classifier.operations import evaluate_file, set_threads  # torch: this command only

    set_threads(threads)
    report = evaluate_file(model, file, device, (text_field, label_field), fmt)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        print_report(report)
        _print_reliability(report["calibration"])


@click.command("calibrate")
@click.option("--model", required=True, help="installed classifier whose config.json gets the temperature")
@click.argument("file", type=FILE, required=False)
@click.option("--reviews", "from_reviews", is_flag=True, help="Fit on the model's random-sample reviews instead.")
@FORMAT_OPTION
@click.option("--text-field", default="text", show_default=True)
@click.option("--label-field", default="label", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, help="torch CPU threads (default: torch's choice)")
@click.pass_context
def calibrate(ctx, model, file, from_reviews, fmt, text_field, label_field, device, threads):
    """Fit one temperature for MODEL on a labelled dev FILE, or with --reviews on what reviewers
    said of a random sample of its results (`lstmq review`), and store it in the model's
    config.json (accuracy is unchanged; scores become calibrated probabilities; the version id changes)."""
    from lstmq.worker.ml.classifier.calibrate import calibrate_installed  # torch: this command only
    from lstmq.worker.ml.classifier.operations import set_threads  # torch: this command only

    if (file is None) == (not from_reviews):
        raise InputError("give a labelled FILE or --reviews (not both)")
    set_threads(threads)
    with tempfile.TemporaryDirectory(prefix="lstmq-reviews-") as folder:
        source = None
        if from_reviews:
            file, fmt, text_field, label_field = _reviews_file(model, Path(folder)), "jsonl", "text", "label"
            source = f"random-sample reviews of {model}"
        done = calibrate_installed(
            model, file, device, (text_field, label_field), fmt, _command_line(ctx), source=source
        )
    c, report = done["calibration"], done["report"]
    click.echo(
        f"{model}: temperature {done['previous_temperature']} -> {c['temperature']}, fitted on {c['rows']} rows; "
        f"accuracy {report['accuracy']:.4f} (unchanged by any temperature)"
    )
    click.echo(f"ECE in-sample (fitted and measured on all rows): {c['ece_before']:.4f} -> {c['ece_after']:.4f}")
    held = c["held_out"]
    if held:
        ts = " / ".join(str(f["temperature"]) for f in held["folds"])
        click.echo(
            f"ECE held-out (fitted on one half, measured on the other, mean of both ways; T {ts}): "
            f"{held['ece_before']:.4f} -> {held['ece_after']:.4f}, NLL {held['nll_before']:.4f} -> {held['nll_after']:.4f}"
        )
    click.echo(f"NLL in-sample {c['nll_before']:.4f} -> {c['nll_after']:.4f}")
    click.echo(f"wrote {done['path']}/config.json; version {done['version_before']} -> {done['version']}")
    _print_reliability(report["calibration"])


def _reviews_file(model: str, folder: Path) -> Path:
    """The model's random-sample reviews as a JSONL file in ``folder``: least-confident reviews
    would fit a temperature for the hardest documents, not for the model's whole input."""
    path = folder / "reviews.jsonl"
    with session_scope(ready_engine()) as session, path.open("w", encoding="utf-8") as out:
        count = sum(out.write(json.dumps(row) + "\n") > 0 for row in export(session, model, mode="random"))
    if count == 0:
        raise InputError(f"no random-sample reviews of model {model!r} (review a job with `lstmq review JOB`)")
    return path


def _print_reliability(calibration: dict) -> None:
    out = Console()
    out.print(f"expected calibration error {calibration['ece']:.4f} (top score, {ECE_BINS} equal-width bins)")
    table = Table("confidence", "rows", "mean confidence", "accuracy", title="reliability")
    for b in calibration["bins"]:
        table.add_row(
            f"{b['lower']:.3f}-{b['upper']:.3f}", str(b["count"]), f"{b['confidence']:.4f}", f"{b['accuracy']:.4f}"
        )
    out.print(table)


@click.command("predict")
@click.option("--model", required=True, help="installed model name")
@click.argument("input_file", metavar="INPUT", type=FILE)
@FORMAT_OPTION
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="default: stdout")
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, help="torch CPU threads (default: torch's choice)")
def predict(model, input_file, fmt, output, device, threads):
    """Classify INPUT (JSONL with `text` and optional `id`, CSV/TSV, or text lines) into JSON Lines."""
    from lstmq.worker.ml.classifier.operations import predict_lines, set_threads  # torch: this command only

    set_threads(threads)
    lines = predict_lines(model, input_file, device, fmt)
    first = next(lines, None)  # model and input errors surface before an output file is created
    with output.open("w", encoding="utf-8") if output else contextlib.nullcontext(sys.stdout) as out:
        for line in itertools.chain([] if first is None else [first], lines):
            out.write(line + "\n")


@click.command("models")
@click.option("--json", "as_json", is_flag=True)
def models(as_json):
    """Installed models: name, version, labels and dev metrics (user models shadow shipped ones)."""
    good, broken = scan_models()
    if as_json:
        rows = [
            {
                "name": m.name,
                "version": m.version,
                "kind": m.kind,
                "labels": m.labels,
                "metrics": m.metrics,
                "path": str(m.path),
            }
            for m in good
        ]
        click.echo(json.dumps({"models": rows, "broken": [dict(name=n, error=e) for n, e in broken]}, indent=2))
    else:
        print_models(good, broken)
