"""`lstmq bench end-to-end` runs all three measurements against real Redis, PostgreSQL and a worker process
(tiny sizes: this checks the command works and cleans up, not how fast anything is)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, func, select

from lstmq.db.schema import Job
from tests.support.postgres import empty_postgres
from tests.support.processes import ROOT, worker_env

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast


@pytest.mark.parametrize("task, unit", [("classify", "docs/s"), ("render", "images/s")])
def test_bench_prints_three_rates_and_their_ratios_and_deletes_its_jobs(lstmq_env, pg_url, redis_url, task, unit):
    home = lstmq_env()
    empty_postgres(pg_url)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lstmq",
            "bench",
            "end-to-end",
            f"--task={task}",
            "--docs=300",
            "--single-docs=20",
            "--batch-size=100",
            "--threads=1",
            f"--redis-url={redis_url}",
            f"--database-url={pg_url}",
        ],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rates = re.findall(rf"^\((a|b|c)\) .*?(\d+) {unit}", result.stdout, re.MULTILINE)
    assert [name for name, _ in rates] == ["a", "b", "c"] and all(int(v) > 0 for _, v in rates)
    assert re.search(r"b/a = \d+\.\d\d .* b/c = \d+\.\d", result.stdout)
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Job)) == 0
    engine.dispose()
    assert not list(home.glob("bench-*")), "the bench's folder (images, worker log) is removed"
