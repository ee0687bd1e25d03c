"""`lstmq bench peer`: listed with the benches, one `error:` line where Ray (the optional `bench`
extra) is missing, and, where Ray is installed, a run on a small corpus against real Redis and
PostgreSQL (a check of the command, its output and its clean-up, not of how fast anything is)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, func, select, text

from lstmq.db.schema import Job
from tests.bench.test_cli import lstmq, one_error_line
from tests.support.postgres import empty_postgres
from tests.support.processes import ROOT, worker_env

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray (the bench extra) is not installed")


def test_peer_is_one_of_the_benches(capsys):
    code, out, _ = lstmq(capsys, "bench", "--help")
    assert code == 0
    assert re.search(r"^  peer +lstmq beside Ray Data", out, re.MULTILINE), out


def test_without_ray_it_says_how_to_install_it_in_one_line_before_touching_anything(capsys, monkeypatch, lstmq_env):
    home = lstmq_env()
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as where it is not installed
    code, out, err = lstmq(capsys, "bench", "peer", "--docs=10")
    assert code == 2
    assert one_error_line(code, err) == "error: Ray is not installed: pip install 'lstmq[bench]'"
    assert out == ""
    assert not list(home.glob("bench-*")), "nothing was started"


@needs_ray
@pytest.mark.parametrize(
    "args, message",
    [
        (["--database-url=sqlite:///x.db"], "error: --database-url sqlite:///x.db: this bench needs PostgreSQL"),
        (["--ray-actors=4096"], "error: --ray-actors 4096: each actor holds one of the "),
    ],
)
def test_what_ray_cannot_run_is_one_error_line(capsys, lstmq_env, args, message):
    lstmq_env()
    code, _, err = lstmq(capsys, "bench", "peer", *args)
    assert one_error_line(code, err).startswith(message)


@needs_ray
@pytest.mark.processes  # starts a worker and a local Ray: left out by make test-fast
def test_peer_prints_both_rates_their_ratio_and_cpu_and_leaves_nothing(lstmq_env, pg_url, redis_url):
    home = lstmq_env()
    database = empty_postgres(pg_url)
    args = ["--docs=2000", "--threads=1", f"--redis-url={redis_url}", f"--database-url={database}"]
    done = subprocess.run(
        [sys.executable, "-m", "lstmq", "bench", "peer", *args],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.startswith("peer: 2,000 documents, minimal classifier on the CPU, batch 256, 1 torch thread(s)"), out
    cpu = r"CPU per document: .*[\d,]+ µs.*; cores \d+% busy"
    assert re.search(rf"^  lstmq +[\d,]+ docs/s  \( *[\d.]+ s\)  {cpu}$", out, re.MULTILINE), out
    assert re.search(rf"^  Ray Data +[\d,]+ docs/s  \( *[\d.]+ s\)  {cpu}$", out, re.MULTILINE), out
    assert re.search(r"^  lstmq/Ray = \d+\.\d\d$", out, re.MULTILINE), out
    assert "target" not in out  # measurements and what bounds them, nothing to aim at
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Job)) == 0
        assert conn.scalar(text("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'peer_bench_%'")) == 0
    engine.dispose()
    assert not list(home.glob("bench-*")), "the bench's folder (minimal model, corpus, worker log) is removed"
