"""``lstmq review``, ``lstmq reviews export`` and ``lstmq quality``: judge a job's labels in a
terminal, export the answers for training, and compare reviewed agreement with expected accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lstmq.db.engine import ready_engine, session_scope
from lstmq.db.queries import find_job
from lstmq.errors import InputError
from lstmq.modelstore import locate_model
from lstmq.producer.submit import default_owner
from lstmq.reviews import MODES, export, field_accuracy, job_version, labels_of, quality, record, sample

MODE_OPTION = click.option(
    "--mode", type=click.Choice(MODES), default="random", show_default=True, help="How documents are chosen."
)
QUIT = "q"


@click.command()
@click.argument("job_id")
@MODE_OPTION
@click.option("-n", "size", type=click.IntRange(1), default=50, show_default=True, help="Sample size.")
def review(job_id, mode, size) -> None:
    """Review a job's labels one document at a time: a number picks a label, Enter keeps the
    model's, q quits. Answers are stored as you go; the same sample comes back next time."""
    engine = ready_engine()
    with session_scope(engine) as session:
        job_id = find_job(session, job_id).id
        found = job_version(session, job_id)
        if found is None:
            raise InputError(f"job {job_id} has no classifications to review yet")
        docs, labels = sample(session, job_id, mode, size), labels_of(session, found[1])
    todo = [doc for doc in docs if doc.reviewed is None]
    if not todo:
        click.echo(f"nothing to review: {len(docs)} of {len(docs)} reviewed")
        return
    reviewer, done = default_owner(), len(docs) - len(todo)
    for doc in todo:
        answer = _ask(doc, labels, done, len(docs))
        if answer is None:
            break
        with session_scope(engine) as session:
            record(session, job_id, [{"id": doc.id, "label": answer}], reviewer, mode)
        done += 1
    click.echo(f"{done} of {len(docs)} reviewed")


def _ask(doc, labels: list[str], done: int, total: int) -> str | None:
    """Show one document; the label chosen (None to quit)."""
    click.echo(f"\n[{done + 1} of {total}] {doc.id}\n{doc.text}\n")
    click.echo(f"model: {doc.label} ({doc.score:.2f})")
    click.echo("  ".join(f"{i}) {label}" for i, label in enumerate(labels, 1)) + f"  Enter) keep  {QUIT}) quit")
    while True:
        reply = click.prompt("label", default="", show_default=False).strip()
        if reply == QUIT:
            return None
        if reply == "":
            return doc.label
        if reply.isdigit() and 1 <= int(reply) <= len(labels):
            return labels[int(reply) - 1]
        click.echo(f"error: type 1-{len(labels)}, Enter or {QUIT}", err=True)


@click.group()
def reviews() -> None:
    """Reviews people gave (`lstmq review`, the console, the API)."""


@reviews.command("export")
@click.option("--model", required=True, help="Whose results' reviews.")
@click.option("-o", "output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="FILE.jsonl")
def export_reviews(model, output) -> None:
    """Write reviewed documents as {"text", "label"} JSON Lines, ready for `lstmq train classifier`."""
    count = 0
    with session_scope(ready_engine()) as session, output.open("w", encoding="utf-8") as out:
        for row in export(session, model):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    if count == 0:
        output.unlink()
        raise InputError(f"no reviews of model {model!r} (review a job with `lstmq review JOB`)")
    click.echo(f"{count} reviewed documents written to {output}")


CARD = "MODEL_CARD.md"
FIELD_HEADING = "## Field accuracy (reviews)"


@reviews.command("card")
@click.option("--model", required=True, help="Installed classifier whose MODEL_CARD.md gets the section.")
def card(model) -> None:
    """Write the model's field accuracy (random-sample reviews, per version) into its model card,
    replacing the section written before."""
    path = locate_model(model) / CARD
    with session_scope(ready_engine()) as session:
        found = field_accuracy(session, model)
    if not found:
        raise InputError(f"no random-sample reviews of model {model!r} (review a job with `lstmq review JOB`)")
    text = path.read_text(encoding="utf-8") if path.is_file() else f"# {model}\n"
    kept = text.split(f"\n{FIELD_HEADING}\n")[0].rstrip("\n")
    path.write_text(kept + "\n\n" + field_section(found), encoding="utf-8")
    click.echo(f"wrote the field accuracy of {model} ({found[0]['reviewed']} reviews of its latest version) to {path}")


def field_section(found: list[dict]) -> str:
    lines = [
        FIELD_HEADING,
        "",
        "Share of random-sample reviews (`lstmq review`) that kept the model's label, with its 95 % Wilson interval.",
        "",
        "| version | reviews | agreement | 95 % interval |",
        "|---|---|---|---|",
    ]
    for row in found:
        low, high = row["interval"]
        lines.append(f"| {row['version'][:12]} | {row['reviewed']} | {row['agreement']:.3f} | {low:.3f}-{high:.3f} |")
    return "\n".join(lines) + "\n"


@click.command("quality")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="The API's quality object.")
def quality_command(job_id, as_json) -> None:
    """Reviewed agreement (95 % interval) beside expected accuracy, for the job and each label."""
    with session_scope(ready_engine()) as session:
        found = quality(session, find_job(session, job_id).id)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(f"job {found['id']}  model {found['model']}")
    click.echo(f"{'label':<16} {'docs':>6} {'reviewed':>8} {'random':>6} {'agreement':>22} {'expected':>8}")
    click.echo(_row("(all)", found))
    for label, values in found["labels"].items():
        click.echo(_row(label, values))
    for label, values in [("(all)", found), *found["labels"].items()]:
        if values["warning"]:
            click.echo(f"warning: {label}: {values['warning']}", err=True)


def _row(label: str, values: dict) -> str:
    agreement = "-"
    if values["agreement"] is not None:
        low, high = values["interval"]
        agreement = f"{values['agreement']:.3f} [{low:.3f}, {high:.3f}]"
    expected = "-" if values["expected_accuracy"] is None else f"{values['expected_accuracy']:.3f}"
    return (
        f"{label:<16} {values['documents']:>6} {values['reviewed']:>8} {values['reviewed_random']:>6} "
        f"{agreement:>22} {expected:>8}"
    )
