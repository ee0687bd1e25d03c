"""How long reading a job's state takes with a large job in the database: the queries behind
`lstmq status JOB --json`, `lstmq jobs`, `GET /api/v1/jobs/{id}` and `GET /api/v1/jobs`, timed
in process (best of 5) in a throwaway PostgreSQL database created on the server of
``--database-url`` and dropped afterwards::

    lstmq bench status [--docs 1000000]

The documents go in as rows at migration 0005, and the upgrade to head counts them (0006's
backfill), as on a database upgraded with jobs in it.
"""

import time
import uuid

import click
from sqlalchemy import text

from lstmq.api import jobs as api_jobs
from lstmq.bench import options
from lstmq.bench.harness import throwaway_postgres
from lstmq.db.engine import session_scope
from lstmq.db.migrate import head_revision, upgrade
from lstmq.db.queries import job_health, job_status, list_jobs

STALL_S = 300

JOB = """INSERT INTO jobs (id, task, model, state, total, rejected, sources, options, created_at, submitted_at,
    recoveries) VALUES (:id, 'classify', 'news', 'queued', :n, 0, '[]', '{}', now(), now(), 0)"""
ROWS = """INSERT INTO documents (job_id, external_id, source, record_no, line_no, content_hash, text, status, updated_at)
SELECT :id, g::text, 'bench', g, g + 1, md5(g::text) || md5(g::text), 'text number ' || g,
    CASE WHEN g % 10 < 6 THEN 'done' WHEN g % 10 = 6 THEN 'failed' ELSE 'pending' END, now()
FROM generate_series(0, :n - 1) AS g"""


def best_of(fn, times=5):
    spent = []
    for _ in range(times):
        start = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - start)
    return min(spent) * 1000


def status(engine, job_id):
    with session_scope(engine) as session:  # what `lstmq status JOB --json` asks
        current = job_status(session, job_id)
        job_health(session, current, STALL_S)
    return current


def jobs(engine):
    with session_scope(engine) as session:  # what `lstmq jobs` asks
        found = list_jobs(session, limit=50)
        for job in found:
            job_health(session, job, STALL_S)


def add_job(engine, n):
    job_id = uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(text(JOB), {"id": job_id, "n": n})
        conn.execute(text(ROWS), {"id": job_id, "n": n})
    return job_id


@click.command("status")
@options.docs(1_000_000, "Documents of the large job.")
@options.database_url("A PostgreSQL database whose server gets a throwaway database for the bench (dropped after).")
def status_command(docs: int, database_url: str) -> None:
    """How long reading job state takes beside a large job.

    Times the queries of `lstmq status`, `lstmq jobs` and their API routes."""
    with throwaway_postgres(database_url) as (_name, engine):
        head = head_revision()
        upgrade(engine, "0005")
        start = time.perf_counter()
        big = add_job(engine, docs)
        for _ in range(20):
            add_job(engine, 10)
        click.echo(f"recorded {docs} + 200 documents in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        upgrade(engine)
        click.echo(f"migration to {head} (backfill) in {time.perf_counter() - start:.1f} s")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        click.echo(status(engine, big))
        click.echo(
            f"head {head}: status best of 5 {best_of(lambda: status(engine, big)):.1f} ms; "
            f"jobs best of 5 {best_of(lambda: jobs(engine)):.1f} ms"
        )
        click.echo(
            f"GET /api/v1/jobs/{{id}} best of 5 {best_of(lambda: api_jobs.get_status(big, engine)):.1f} ms; "
            f"GET /api/v1/jobs best of 5 {best_of(lambda: api_jobs.list_jobs(engine, 50, None, None, None)):.1f} ms"
        )
