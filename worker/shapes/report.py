"""Presenting an oracle evaluation: a rich table for people, a markdown model card (torch-free)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

SETS = ("one_object", "two_object", "held_out")


def print_report(report: dict) -> None:
    console = Console()
    table = Table(title=f"{report.get('model', '')} {report.get('version', '')}: oracle evaluation")
    attributes = sorted({a for s in SETS for a in report[s]["attributes"]})
    for column in ["caption set", "n", "exact", *attributes]:
        table.add_column(column, justify="left" if column == "caption set" else "right")
    for s in SETS:
        row = report[s]
        table.add_row(
            s,
            str(row["n"]),
            f"{row['exact']:.1%}",
            *[f"{row['attributes'][a]:.1%}" if a in row["attributes"] else "-" for a in attributes],
        )
    console.print(table)
    for attribute, d in report["diversity"].items():
        console.print(
            f"diversity of open {attribute}: {d['mean_distinct']} distinct values in {d['samples']} "
            f"samples per caption (the world itself: {d['world_expected']}; ratio {d['ratio']})"
        )


def markdown_table(report: dict) -> str:
    lines = ["| caption set | n | exact match | per attribute |", "|---|---|---|---|"]
    for s in SETS:
        row = report[s]
        attrs = ", ".join(f"{a} {v:.1%}" for a, v in row["attributes"].items())
        lines.append(f"| {s} | {row['n']} | **{row['exact']:.1%}** | {attrs} |")
    lines.append("")
    for attribute, d in report["diversity"].items():
        lines.append(
            f"- open {attribute}: {d['mean_distinct']} distinct values per {d['samples']} samples "
            f"(uniform world: {d['world_expected']}, ratio {d['ratio']}) over {d['captions']} captions"
        )
    return "\n".join(lines)


CARD = """# Model card: {name}

**Kind:** text-to-image generator (LSTM caption encoder -> object slots -> separable mask decoder,
conditional VAE). Architecture, tokenizer and weights are in this folder (`config.json`,
`tokenizer.json`, `model.safetensors`); the version id is a hash of them.

## Training

{training}

## Evaluation (`lstmq eval-images --model {name}`)

{evaluation}

Exact match = right number of objects and every stated attribute right (colour, shape, stated
size, stated grid cell, and for two objects the relation's shared row/column), judged by the
shapes-world oracle, which scores 100 % on ground-truth renders. `held_out` captions contain a
colour-shape pair that never appeared in training (red triangle, orange square, yellow diamond,
green circle, cyan triangle, blue square, purple diamond, white circle).

## Limits

- Draws at most `slots` objects, each in one flat colour: it is made for the shapes world and
  similar object-centric images, not photographs.
- Words it never saw are ignored (flag `unknown_words`); text that is mostly unknown gets the
  flag `out_of_domain` and an image that means little. Empty text gets no image.
"""


def write_card(path, name: str, training: dict, report: dict | None) -> None:
    lines = "\n".join(f"- {k}: `{v}`" for k, v in training.items())
    evaluation = markdown_table(report) if report else "Not evaluated (no oracle for user data)."
    (path / "MODEL_CARD.md").write_text(CARD.format(name=name, training=lines, evaluation=evaluation), encoding="utf-8")
