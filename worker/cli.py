"""``lstmq worker``: a real Celery worker with a process model chosen for the device.

- concurrency 1: ``--pool solo`` (one process, one batch at a time: the model waits while its
  batch is read and written);
- concurrency > 1 (the default is 2; ``--pool auto``): threads, CPU or CUDA. One model in the process,
  fed by several batches in flight: while one batch is in the model, others are read, checked,
  tokenized or written (psycopg, ``tokenizers`` and torch release the GIL), and the model's
  passes take the work of every waiting batch at once (``lstmq.worker.ml.coalesce``);
- ``--pool prefork`` (CPU only): child processes, each with its own model and cores/concurrency
  torch threads, for hosts where the per-batch Python work needs more than one core.
"""

from __future__ import annotations

import os

import click

from lstmq.contract import ALL_QUEUES

DEVICES = ("auto", "cpu", "cuda")
# Two batches in flight: one in the model while the other is read or written. Measured on 2
# cores (lstmq bench pipeline): +30% end to end over one; a third adds little there.
DEFAULT_CONCURRENCY = 2
POOLS = ("auto", "threads", "prefork")


def choose_pool(device: str, concurrency: int, pool: str = "auto") -> str:
    """solo | threads | prefork (pure: the rules in the module docstring); raises
    click.BadParameter for prefork with CUDA (forked children cannot use it)."""
    if pool == "prefork" and device == "cuda":
        raise click.BadParameter("prefork children cannot use CUDA: use --pool threads (the default)")
    if concurrency == 1:
        return "solo"
    return "prefork" if pool == "prefork" else "threads"


def child_device(device: str, pool: str) -> str:
    """Forked children must not use CUDA: ``auto`` means CPU there."""
    return "cpu" if pool == "prefork" and device == "auto" else device


def torch_threads(pool: str, concurrency: int, cores: int | None = None) -> int:
    """Prefork children share the cores; one shared model (solo, threads) runs one pass at a
    time (``lstmq.worker.ml.coalesce``), so it gets them all."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // concurrency) if pool == "prefork" else cores


def parse_queues(value: str | None) -> list[str]:
    if not value:
        return list(ALL_QUEUES)
    queues = [q.strip() for q in value.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(ALL_QUEUES))
    if unknown:
        raise click.BadParameter(f"unknown queue {', '.join(unknown)}; known: {', '.join(ALL_QUEUES)}")
    return queues


def celery_argv(queues: list[str], pool: str, concurrency: int, loglevel: str, hostname: str | None) -> list[str]:
    argv = [
        "worker",
        f"--queues={','.join(queues)}",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]
    return argv + ([f"--hostname={hostname}"] if hostname else [])


@click.command()
@click.option("--queues", "-Q", help=f"Comma-separated queues to consume [default: {','.join(ALL_QUEUES)}].")
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="Where models run; auto picks CUDA when present (CPU for prefork children).",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Batches in flight at once (threads sharing one model, unless --pool prefork).",
)
@click.option(
    "--pool",
    type=click.Choice(POOLS),
    default="auto",
    show_default=True,
    help="With --concurrency > 1: threads feeding one model (auto), or prefork processes (CPU only).",
)
@click.option(
    "--loglevel",
    "-l",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="torch CPU threads per process [default: cores / concurrency]. On a busy "
    "shared host, 1 avoids threads spinning against each other.",
)
@click.option("--hostname", "-n", help="Worker node name (Celery's -n), e.g. gpu0@%h.")
def worker(
    queues: str | None,
    device: str,
    concurrency: int,
    pool: str,
    loglevel: str,
    threads: int | None,
    hostname: str | None,
) -> None:
    """Run a worker: load models lazily, classify/render batches, write results to the database."""
    queue_list = parse_queues(queues)
    pool = choose_pool(device, concurrency, pool)
    # Read by torch when it is first imported, in the process that runs batches (never here).
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    else:
        os.environ.setdefault("OMP_NUM_THREADS", str(torch_threads(pool, concurrency)))
    if device == "cuda":  # refuse now rather than fail every batch; no fork follows (solo/threads)
        from lstmq.worker.ml.device import resolve_device  # torch: only when CUDA is asked for (solo/threads)

        resolve_device("cuda")
    # Builds the Celery app from the settings: here, so `lstmq --help` (which imports this
    # module) works whatever the environment holds.
    from lstmq.worker.celery_app import app, startup_checks

    startup_checks()  # one line and a non-zero exit before Celery prints its banner
    app.conf.lstmq_checked = True
    app.conf.lstmq_device = child_device(device, pool)
    app.worker_main(celery_argv(queue_list, pool, concurrency, loglevel.lower(), hostname))
