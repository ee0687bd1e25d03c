"""How long reading a job's state takes with a large job in the database: the queries behind
`lstmq status JOB --json`, `lstmq jobs`, `GET /api/v1/jobs/{id}` and `GET /api/v1/jobs`, timed
in process (best of 5) in a throwaway PostgreSQL database created on the server at
$LSTMQ_TEST_PG (default the local `test` database's server) and dropped afterwards::

    python -m lstmq.bench.status [DOCS]          # default 1,000,000 documents

The documents go in as rows at migration 0005, and the upgrade to head counts them (0006's
backfill), as on a database upgraded with jobs in it.
"""

import os
import sys
import time
import uuid

from sqlalchemy import create_engine, text

from lstmq.api import jobs as api_jobs
from lstmq.db.engine import session_scope
from lstmq.db.migrate import head_revision, upgrade
from lstmq.db.queries import job_health, job_status, list_jobs

ADMIN = os.environ.get("LSTMQ_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DOCS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
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


def main():
    name = f"lstmq_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(ADMIN.rsplit("/", 1)[0] + f"/{name}")
    try:
        head = head_revision()
        upgrade(engine, "0005")
        start = time.perf_counter()
        big = add_job(engine, DOCS)
        for _ in range(20):
            add_job(engine, 10)
        print(f"recorded {DOCS} + 200 documents in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        upgrade(engine)
        print(f"migration to {head} (backfill) in {time.perf_counter() - start:.1f} s")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        print(status(engine, big))
        print(
            f"head {head}: status best of 5 {best_of(lambda: status(engine, big)):.1f} ms; "
            f"jobs best of 5 {best_of(lambda: jobs(engine)):.1f} ms"
        )
        print(
            f"GET /api/v1/jobs/{{id}} best of 5 {best_of(lambda: api_jobs.get_status(big, engine)):.1f} ms; "
            f"GET /api/v1/jobs best of 5 {best_of(lambda: api_jobs.list_jobs(engine, 50, None, None, None)):.1f} ms"
        )
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
