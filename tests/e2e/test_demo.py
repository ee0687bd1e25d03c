"""`make demo` (python -m lstmq.producer.demo) on a fresh, empty LSTMQ_HOME with the shipped models."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.processes import ROOT, worker_env

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast


def test_the_demo_classifies_the_samples_with_no_servers_and_stops_its_worker(lstmq_env):
    home = lstmq_env()
    env = worker_env()
    result = subprocess.run(
        [sys.executable, "-m", "lstmq.producer.demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )

    assert result.returncode == 0, result.stderr + result.stdout[-2000:]
    submitted = re.findall(r"submitted (\d+) documents", result.stdout)
    finished = re.findall(r"(\d+) done, (\d+) failed", result.stdout)
    assert submitted and len(finished) == len(submitted)
    assert [int(done) + int(failed) for done, failed in finished] == [int(n) for n in submitted]
    assert f"database:   sqlite:///{home / 'lstmq.db'}" in result.stdout, result.stdout[-600:]
    assert (home / "lstmq.db").is_file()
    assert "Warm shutdown" in (home / "worker.log").read_text()  # stopped cleanly, not killed
