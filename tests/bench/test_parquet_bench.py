"""`lstmq bench parquet --docs N` exports a job it makes in a throwaway database, prints the
rate and the memory, and drops the database (a tiny size: this checks the command, not speed)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from tests.support.processes import ROOT, worker_env

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast


def test_the_parquet_bench_prints_its_rate_and_memory_and_drops_its_database(pg_url):
    result = subprocess.run(
        [sys.executable, "-m", "lstmq", "bench", "parquet", "--docs=2000", f"--database-url={pg_url}"],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^exported 2,000 rows in .* [\d,]+ rows/s", result.stdout, re.MULTILINE)
    assert re.search(r"^tracemalloc peak of the export .*: [\d.]+ MiB$", result.stdout, re.MULTILINE)
    name = re.search(r"in database (lstmq_bench_\w+) ", result.stdout).group(1)
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        left = conn.scalar(text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name})
    engine.dispose()
    assert left == 0
