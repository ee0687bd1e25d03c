"""How fast, and in how much memory, a job's results export as Parquet: ``lstmq results JOB
--format parquet -o FILE``'s path (``result_rows`` streamed into ``lstmq.parquet``), in process,
with a classified job in a throwaway PostgreSQL database created on the server of
``--database-url`` and dropped afterwards::

    lstmq bench parquet [--docs 1000000]

It exports twice: once timed (rows/s, and the process's peak RSS before and after), once under
tracemalloc (the peak of Python's own allocations; pyarrow's buffers are reported from its pool).
"""

import resource
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import click
from sqlalchemy import text

from lstmq.bench import options
from lstmq.bench.harness import throwaway_postgres
from lstmq.db.engine import session_scope
from lstmq.db.migrate import upgrade
from lstmq.db.queries import get_job, result_rows
from lstmq.parquet import pyarrow, write_parquet_file

JOB = """INSERT INTO jobs (id, task, model, state, total, done_count, rejected, sources, options, created_at)
VALUES (:id, 'classify', 'news', 'queued', :n, :n, 0, '[]', '{}', now())"""
DOCUMENTS = """INSERT INTO documents (job_id, external_id, source, record_no, line_no, content_hash, text, status, updated_at)
SELECT :id, 'doc-' || g, 'bench', g, g + 1, md5(g::text) || md5(g::text), 'text number ' || g, 'done', now()
FROM generate_series(0, :n - 1) AS g"""
RESULTS = """INSERT INTO classifications (document_id, model, model_version, label, score, probs, flags, created_at, updated_at)
SELECT id, 'news', 'v1', (ARRAY['World', 'Sports', 'Business', 'Sci/Tech'])[1 + id % 4], 0.25 + (id % 75) / 100.0,
    '{}', '[]', now(), now()
FROM documents WHERE job_id = :id"""


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def export(engine, job_id: str, path: Path) -> int:
    with session_scope(engine) as session:
        job = get_job(session, job_id)
        return write_parquet_file(result_rows(session, job), job.task, path)


@click.command("parquet")
@options.docs(1_000_000, "Classified documents of the exported job.")
@options.database_url("A PostgreSQL database whose server gets a throwaway database for the bench (dropped after).")
def parquet(docs: int, database_url: str) -> None:
    """A job's results exported as Parquet: rows/s and memory."""
    pa = pyarrow()  # not installed: one line naming the extra, before any database is made
    with throwaway_postgres(database_url) as (name, engine):
        upgrade(engine)
        job_id = uuid.uuid4().hex
        start = time.perf_counter()
        with engine.begin() as conn:
            for statement in (JOB, DOCUMENTS, RESULTS):
                conn.execute(text(statement), {"id": job_id, "n": docs})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        click.echo(f"recorded {docs:,} classified documents in database {name} in {time.perf_counter() - start:.1f} s")
        with tempfile.TemporaryDirectory(prefix="lstmq-bench-") as folder:
            path = Path(folder) / "results.parquet"
            rss_before = peak_rss_mib()
            start = time.perf_counter()
            rows = export(engine, job_id, path)
            spent = time.perf_counter() - start
            click.echo(
                f"exported {rows:,} rows in {spent:.1f} s: {rows / spent:,.0f} rows/s; "
                f"file {path.stat().st_size / 2**20:.1f} MiB, "
                f"{pa.parquet.ParquetFile(path).metadata.num_row_groups} row groups"
            )
            click.echo(
                f"peak RSS {rss_before:.0f} MiB before the export, {peak_rss_mib():.0f} MiB after; "
                f"pyarrow pool peak {pa.default_memory_pool().max_memory() / 2**20:.1f} MiB"
            )
            tracemalloc.start()
            export(engine, job_id, path)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            click.echo(f"tracemalloc peak of the export (second run): {peak / 2**20:.1f} MiB")
