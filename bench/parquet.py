"""How fast, and in how much memory, a job's results export as Parquet: ``lstmq results JOB
--format parquet -o FILE``'s path (``result_rows`` streamed into ``lstmq.parquet``), in process,
with a classified job in a throwaway PostgreSQL database created on the server at
$LSTMQ_TEST_PG (default the local `test` database's server) and dropped afterwards::

    python -m lstmq.bench.parquet [DOCS]          # default 1,000,000 documents

It exports twice: once timed (rows/s, and the process's peak RSS before and after), once under
tracemalloc (the peak of Python's own allocations; pyarrow's buffers are reported from its pool).
"""

import os
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from lstmq.db.engine import session_scope
from lstmq.db.migrate import upgrade
from lstmq.db.queries import get_job, result_rows
from lstmq.parquet import pyarrow, write_parquet_file

ADMIN = os.environ.get("LSTMQ_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DOCS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000

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


def main() -> None:
    pa = pyarrow()
    name = f"lstmq_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(ADMIN.rsplit("/", 1)[0] + f"/{name}")
    try:
        upgrade(engine)
        job_id = uuid.uuid4().hex
        start = time.perf_counter()
        with engine.begin() as conn:
            for statement in (JOB, DOCUMENTS, RESULTS):
                conn.execute(text(statement), {"id": job_id, "n": DOCS})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        print(f"recorded {DOCS:,} classified documents in database {name} in {time.perf_counter() - start:.1f} s")
        with tempfile.TemporaryDirectory(prefix="lstmq-bench-") as folder:
            path = Path(folder) / "results.parquet"
            rss_before = peak_rss_mib()
            start = time.perf_counter()
            rows = export(engine, job_id, path)
            spent = time.perf_counter() - start
            print(
                f"exported {rows:,} rows in {spent:.1f} s: {rows / spent:,.0f} rows/s; "
                f"file {path.stat().st_size / 2**20:.1f} MiB, "
                f"{pa.parquet.ParquetFile(path).metadata.num_row_groups} row groups"
            )
            print(
                f"peak RSS {rss_before:.0f} MiB before the export, {peak_rss_mib():.0f} MiB after; "
                f"pyarrow pool peak {pa.default_memory_pool().max_memory() / 2**20:.1f} MiB"
            )
            tracemalloc.start()
            export(engine, job_id, path)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"tracemalloc peak of the export (second run): {peak / 2**20:.1f} MiB")
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
