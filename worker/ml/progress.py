"""Terminal output for the ML commands (rich): training progress bar, reports, model lists."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lstmq.settings import SHIPPED_MODEL_DIR

console = Console(stderr=True)


class TrainProgress:
    """A progress bar per epoch showing the running loss and the latest/best dev accuracy."""

    def __init__(self):
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  dev {task.fields[dev]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = None
        self.loss = None
        self.dev = "-"

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "epoch":
            desc = f"member {event['member']} epoch {event['epoch'] + 1}"
            self.task = self.bar.add_task(desc, total=event["steps"], loss=self.loss or 0.0, dev=self.dev)
        elif kind == "step" and self.task is not None:
            self.loss = event["loss"] if self.loss is None else 0.98 * self.loss + 0.02 * event["loss"]
            self.bar.update(self.task, advance=1, loss=self.loss)
        elif kind == "eval" and self.task is not None:
            self.dev = f"{event['dev_accuracy']:.4f} (best {event['best']:.4f})"
            self.bar.update(self.task, dev=self.dev)
            if not console.is_terminal:  # logs of background runs still get one line per evaluation
                task = self.bar.tasks[-1]
                console.print(
                    f"{task.description} step {task.completed:.0f}/{task.total:.0f} "
                    f"loss {self.loss:.4f} dev {self.dev} {task.elapsed or 0:.0f}s"
                )


def print_report(report: dict) -> None:
    out = Console()
    out.print(f"model {report['model']} ({report['version']}) on {report['file']}: {report['rows']} rows")
    out.print(
        f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}"
        + (f"   failed {report['failed']}" if report["failed"] else "")
    )
    table = Table("class", "precision", "recall", "F1", "support")
    for label, m in report["per_class"].items():
        table.add_row(label, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"]))
    out.print(table)
    matrix = Table("gold \\ predicted", *report["labels"], title="confusion matrix")
    for label, row in zip(report["labels"], report["confusion"], strict=True):
        matrix.add_row(label, *(str(n) for n in row))
    out.print(matrix)


def print_models(models, broken) -> None:
    out = Console()
    table = Table("name", "kind", "labels", "dev accuracy", "dev macro-F1", "from")
    table.add_column("version", no_wrap=True, min_width=16)
    for m in models:
        dev = m.metrics.get("dev", {})
        acc, f1 = dev.get("accuracy"), dev.get("macro_f1")
        table.add_row(
            m.name,
            m.kind,
            ", ".join(m.labels),
            "-" if acc is None else f"{acc:.4f}",
            "-" if f1 is None else f"{f1:.4f}",
            "shipped" if m.path.parent == SHIPPED_MODEL_DIR else str(m.path.parent),
            m.version,
        )
    out.print(table)
    for name, error in broken:
        out.print(f"[red]broken[/red] {name}: {error}")
