"""`lstmq bench pipeline` against real Redis, PostgreSQL and a worker process (a small --docs:
this checks the command, its stage table and its clean-up, not how fast anything is)."""

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


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstmq", "bench", *args],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("setup", ["redis+postgresql", "embedded"])
def test_pipeline_prints_both_rates_the_stages_and_what_bounds_them_and_leaves_nothing(
    lstmq_env, pg_url, redis_url, tmp_path, setup
):
    home = lstmq_env()
    if setup == "embedded":  # SQLite and the filesystem broker
        services = ["--redis-url=filesystem://", f"--database-url=sqlite:///{tmp_path / 'e.db'}"]
    else:
        services = [f"--redis-url={redis_url}", f"--database-url={empty_postgres(pg_url)}"]
    result = bench("pipeline", "--docs=300", "--batch-size=100", "--threads=1", *services)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    a_line = r"^\(a\) model in-process, batched: +[\d,]+ docs/s  \(the model's own CPU: [\d,.]+ µs per document; 1/a = [\d,.]+ µs\)$"
    assert re.search(a_line, out, re.MULTILINE), out
    assert re.search(r"^\(p\) end to end, 300 documents: +[\d,]+ docs/s .*p/a = \d+\.\d\d\)$", out, re.MULTILINE), out
    stages = re.findall(r"^    producer (\w+) +[\d,]+ docs/s", out, re.MULTILINE)
    assert stages == ["read", "hash", "record", "send"], out
    worker_stages = re.findall(r"^    worker +(\S+(?: \S+)*) +[\d,]+ docs/s", out, re.MULTILINE)
    assert worker_stages == ["dispatch", "receive", "read state", "model", "tokenize", "write results"], out
    assert re.search(r"^    slowest stage: [\w ]+ \([\d,]+ docs/s\)$", out, re.MULTILINE), out
    cpu = re.search(
        r"^CPU per document: producer ([\d,]+) µs, worker ([\d,]+) µs \(the model alone: [\d,]+ µs\),"
        r" database \+ broker \+ rest ([\d,]+) µs; total ([\d,]+) µs$",
        out,
        re.MULTILINE,
    )
    assert cpu, out
    producer, worker, rest, total = (int(n.replace(",", "")) for n in cpu.groups())
    assert producer > 0 and worker > 0 and abs(producer + worker + rest - total) <= 2, out  # rounding
    ceiling = (
        rf"^\d+ cores were \d+% busy during \(p\) .* CPU-bound ceiling here: \d+ cores / {cpu[4]} µs = [\d,]+ docs/s$"
    )
    assert re.search(ceiling, out, re.MULTILINE), out
    assert "target" not in out  # measurements and what bounds them, nothing to aim at
    if setup != "embedded":
        engine = create_engine(pg_url)
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Job)) == 0
        engine.dispose()
    assert not list(home.glob("bench-*")), "the bench's folder (minimal model, corpus, worker log) is removed"
    assert not (home / "models").exists(), "the minimal model is never installed"
