"""The ``lstmq`` command: a thin click group whose subcommands live beside what they drive.

Subcommands are imported lazily by name, so ``lstmq submit`` never imports torch and
``lstmq --help`` starts instantly. Every ``LstmqError`` becomes one line on stderr.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading

import click

from lstmq.errors import LstmqError

# command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "db": "lstmq.db.cli:db",
    "prune": "lstmq.db.cli:prune_command",
    "submit": "lstmq.producer.remote:submit_command",  # lstmq.producer.cli's command plus --api
    "status": "lstmq.producer.remote:status_command",
    "results": "lstmq.producer.remote:results_command",
    "jobs": "lstmq.producer.remote:jobs_command",
    "cancel": "lstmq.producer.cli:cancel",
    "requeue": "lstmq.producer.cli:requeue",
    "job": "lstmq.producer.cli:job",
    "owner": "lstmq.producer.cli:owner",
    "workers": "lstmq.producer.cli:workers",
    "schedule": "lstmq.producer.schedules.cli:schedule",
    "scheduler": "lstmq.producer.schedules.cli:scheduler",
    "worker": "lstmq.worker.cli:worker",
    "train": "lstmq.cli:train",
    "eval": "lstmq.worker.ml.classifier.cli:evaluate",
    "calibrate": "lstmq.worker.ml.classifier.cli:calibrate",
    "predict": "lstmq.worker.ml.classifier.cli:predict",
    "models": "lstmq.worker.ml.classifier.cli:models",
    "bench": "lstmq.bench.cli:bench",
    "render": "lstmq.worker.ml.generator.cli:render",
    "eval-images": "lstmq.worker.ml.generator.cli:eval_images",
    "contact-sheet": "lstmq.worker.ml.generator.cli:contact_sheet",
    "review": "lstmq.producer.quality_cli:review",
    "reviews": "lstmq.producer.quality_cli:reviews",
    "quality": "lstmq.producer.quality_cli:quality_command",
    "drift": "lstmq.producer.drift_cli:drift",
    "serve": "lstmq.api.cli:serve",
    "token": "lstmq.api.cli:token",
    "webhooks": "lstmq.webhooks.cli:webhooks",
}
TRAIN_COMMANDS: dict[str, str] = {
    "classifier": "lstmq.worker.ml.classifier.cli:train_classifier",
    "distill": "lstmq.worker.ml.classifier.cli:train_distill",
    "generator": "lstmq.worker.ml.generator.cli:train_generator",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that command runs."""

    commands_map: dict[str, str] = COMMANDS

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in self.commands_map if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    def _load(self, name: str) -> click.Command | None:
        target = self.commands_map.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A command whose module is not part of this install is simply absent.
            if exc.name and module_name.startswith(exc.name):
                return None
            raise
        return getattr(module, attr, None)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lstmq")
def cli() -> None:
    """Batch LSTM classification and text-to-image over a Redis queue, results in SQL."""


class TrainGroup(LazyGroup):
    commands_map = TRAIN_COMMANDS


@click.group(cls=TrainGroup)
def train() -> None:
    """Train a model: `classifier` (labelled text), `distill` (a single student of an installed
    classifier) or `generator` (text-to-image)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, as Ctrl-C is: its clean-up runs (a submit deletes
    the job it was recording) instead of the process vanishing mid-statement. Workers, the API
    server and the scheduler install their own SIGTERM handlers (a warm shutdown) over this one."""


def _terminate(_signum, _frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> None:
    if threading.current_thread() is threading.main_thread():  # only there can a handler be set
        signal.signal(signal.SIGTERM, _terminate)
    try:
        cli.main(args=argv, prog_name="lstmq", standalone_mode=False)
    except click.exceptions.Abort as exc:
        terminated = isinstance(exc.__cause__ or exc.__context__, Terminated)
        click.echo("terminated" if terminated else "aborted", err=True)
        sys.exit(143 if terminated else 130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LstmqError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.filename is None:  # not about a path the user gave: a real failure, keep its traceback
            raise
        click.echo(f"error: {exc.filename}: {exc.strerror or exc}", err=True)  # e.g. -o into a missing folder
        sys.exit(2)
    except KeyboardInterrupt as exc:
        sys.exit(143 if isinstance(exc, Terminated) else 130)
