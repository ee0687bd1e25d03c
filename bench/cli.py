"""``lstmq bench``: one group for every measurement. Subcommands are imported only when run (or
listed), as the ``lstmq`` group does, so ``lstmq bench schedule`` never imports torch."""

from __future__ import annotations

import click

from lstmq.cli import LazyGroup

# command name -> "module:attribute"
BENCH_COMMANDS: dict[str, str] = {
    "end-to-end": "lstmq.bench.end_to_end:end_to_end",
    "pipeline": "lstmq.bench.pipeline:pipeline_command",
    "fairness": "lstmq.bench.fairness:fairness",
    "model": "lstmq.bench.model:model",
    "schedule": "lstmq.bench.schedule:schedule",
    "status": "lstmq.bench.status:status_command",
    "parquet": "lstmq.bench.parquet:parquet",
    "quality": "lstmq.bench.quality:quality",
    "reuse": "lstmq.bench.reuse:reuse",
    "peer": "lstmq.bench.peer:peer",
}


class BenchGroup(LazyGroup):
    commands_map = BENCH_COMMANDS


@click.group(cls=BenchGroup)
def bench() -> None:
    """Measure lstmq: each subcommand prints its measurements and what bounds them."""
