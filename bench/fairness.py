"""``lstmq bench fairness``: how dispatch serves several jobs at once, measured in one run.

With the minimal classifier (``lstmq.bench.materials``) and one worker:

- a small job behind a large backlog of the same priority: seconds from its submit to its last
  result, against the backlog alone's time per batch;
- a ``high`` small job behind a ``normal`` backlog: seconds to its first and last result;
- two owners with large backlogs, at weights 1:1 and then 3:1: each one's share of the
  documents processed in every window of ``--window`` seconds;
- the broker's memory (Redis ``used_memory``) above empty with the whole backlog submitted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import click
import redis
from sqlalchemy import func, select

from lstmq.bench import options
from lstmq.bench.harness import pipeline, worker_args
from lstmq.bench.materials import MINIMAL_MODEL
from lstmq.db.engine import session_scope
from lstmq.db.schema import Job
from lstmq.dispatch.control import set_weight
from lstmq.producer.submit import submit_records
from lstmq.readers.records import Record

POLL_S = 0.05
SMALL_DOCS = 20  # the small and the high-priority job


def texts(n: int, tag: str) -> Iterator[Record]:
    return (Record(text=f"{tag} document number {i} about markets, sport and science") for i in range(n))


def submit(bench, model: str, n: int, batch_size: int, tag: str, **options) -> str:
    report = submit_records(
        bench.engine, bench.app, texts(n, tag), task="classify", model=model, batch_size=batch_size, **options
    )
    return report.job_id


def done(engine, job_id: str) -> int:
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        return job.done_count + job.failed_count


def wait_for(check: Callable[[], bool], timeout_s: float = 1800) -> float:
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout_s:
            raise click.ClickException("timed out waiting for the bench's jobs")
        time.sleep(POLL_S)
    return time.perf_counter() - start


def cancel(engine, *job_ids: str) -> None:
    with session_scope(engine) as session:
        for job_id in job_ids:
            session.get(Job, job_id).state = "cancelled"


def small_behind_backlog(bench, model: str, docs: int, batch_size: int, small: int) -> None:
    backlog = submit(bench, model, docs, batch_size, "backlog", owner="nightly")
    wait_for(lambda: done(bench.engine, backlog) >= 4 * batch_size)  # the backlog is running
    first = done(bench.engine, backlog)
    job = submit(bench, model, small, batch_size, "small", owner="nightly")
    latency = wait_for(lambda: done(bench.engine, job) >= small)
    per_batch = latency / max(1, (done(bench.engine, backlog) - first) / batch_size)
    click.echo(f"small job ({small} docs) behind {docs:,} of the same priority and owner: {latency:6.2f} s")
    click.echo(f"  the backlog's own time per batch meanwhile: {per_batch:6.3f} s")
    urgent = submit(bench, model, small, batch_size, "urgent", owner="alice", priority="high")
    first_result = wait_for(lambda: done(bench.engine, urgent) > 0)
    last_result = first_result + wait_for(lambda: done(bench.engine, urgent) >= small)
    click.echo(
        f"high-priority job ({small} docs) behind the same backlog: first result {first_result:6.2f} s,"
        f" last {last_result:6.2f} s"
    )
    cancel(bench.engine, backlog)


def shares(bench, model: str, docs: int, batch_size: int, weights: tuple[int, int], window_s: float) -> None:
    with session_scope(bench.engine) as session:
        set_weight(session, "owner-a", weights[0])
        set_weight(session, "owner-b", weights[1])
    a = submit(bench, model, docs, batch_size, "a", owner="owner-a")
    b = submit(bench, model, docs, batch_size, "b", owner="owner-b")
    wait_for(lambda: done(bench.engine, a) + done(bench.engine, b) >= 4 * batch_size)
    lines = []
    before = (done(bench.engine, a), done(bench.engine, b))
    for _window in range(3):
        time.sleep(window_s)
        now = (done(bench.engine, a), done(bench.engine, b))
        got = (now[0] - before[0], now[1] - before[1])
        before = now
        if sum(got) == 0 or min(now) == docs:
            break
        lines.append(f"{100 * got[0] / sum(got):5.1f} % / {100 * got[1] / sum(got):5.1f} %  ({sum(got):,} docs)")
    cancel(bench.engine, a, b)
    click.echo(f"two owners at weights {weights[0]}:{weights[1]}, share of documents per {window_s:.0f}-s window:")
    for line in lines:
        click.echo(f"  {line}")


def broker_memory(bench, model: str, docs: int, batch_size: int, redis_url: str) -> None:
    if not redis_url.startswith("redis"):
        click.echo("broker memory: the embedded broker keeps messages in files (nothing to measure)")
        return
    client = redis.Redis.from_url(redis_url)
    empty = client.info("memory")["used_memory"]
    job = submit(bench, model, docs, batch_size, "memory", owner="nightly")
    full = client.info("memory")["used_memory"]
    with session_scope(bench.engine) as session:
        in_db = session.scalar(select(func.count()).select_from(Job).where(Job.id == job))
    cancel(bench.engine, job)
    click.echo(
        f"broker memory with {docs:,} documents submitted ({in_db} job): {(full - empty) / 2**20:6.2f} MiB above empty"
    )


def run(bench, model: str, docs: int, batch_size: int, small: int, window_s: float, redis_url: str) -> None:
    broker_memory(bench, model, docs, batch_size, redis_url)
    small_behind_backlog(bench, model, docs, batch_size, small)
    shares(bench, model, docs, batch_size, (1, 1), window_s)
    shares(bench, model, docs, batch_size, (3, 1), window_s)


@click.command("fairness")
@options.docs(20_000, "Documents of each backlog.")
@click.option(
    "--window", type=click.FloatRange(min=1), default=10.0, show_default=True, help="Seconds per share window."
)
@options.batch_size()
@options.device()
@options.threads()
@options.concurrency()
@options.redis_url()
@options.database_url()
def fairness(docs, window, batch_size, device, threads, concurrency, redis_url, database_url) -> None:
    """How dispatch shares a worker between jobs and owners.

    With a minimal classifier: a small and a high-priority job behind a backlog of --docs, two
    owners' shares at weights 1:1 and 3:1, the broker's memory."""
    options.check_services(database_url, redis_url)
    args = worker_args("classify", device, concurrency, threads)
    with pipeline(redis_url, database_url, args, minimal_model=True) as bench:
        click.echo(f"fairness: minimal classifier, batch {batch_size}, worker concurrency {concurrency}")
        run(bench, MINIMAL_MODEL, docs, batch_size, SMALL_DOCS, window, redis_url)
