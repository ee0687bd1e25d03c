"""`lstmq worker`: the process model it picks, and the start-up checks that refuse to run."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from lstmq.contract import ALL_QUEUES
from lstmq.worker.cli import celery_argv, child_device, choose_pool, parse_queues, torch_threads
from tests.support.processes import ROOT, worker_env

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast


@pytest.mark.parametrize(
    ("device", "concurrency", "pool"),
    [
        ("auto", 1, "solo"),
        ("cuda", 1, "solo"),
        ("cpu", 1, "solo"),
        ("cpu", 4, "threads"),
        ("auto", 2, "threads"),
        ("cuda", 2, "threads"),
    ],
)
def test_several_batches_in_flight_share_one_model_by_default(device, concurrency, pool):
    assert choose_pool(device, concurrency) == pool


def test_prefork_is_chosen_only_when_asked_and_never_with_cuda():
    assert choose_pool("cpu", 2, "prefork") == "prefork"
    assert choose_pool("auto", 1, "prefork") == "solo"
    with pytest.raises(click.BadParameter, match="prefork children cannot use CUDA"):
        choose_pool("cuda", 2, "prefork")


def test_forked_children_run_on_cpu_when_the_device_is_auto():
    assert child_device("auto", "prefork") == "cpu"
    assert child_device("auto", "solo") == "auto"
    assert child_device("cuda", "threads") == "cuda"


def test_prefork_children_share_the_cores_and_one_shared_model_gets_them_all():
    assert torch_threads("prefork", 2, cores=16) == 8
    assert torch_threads("prefork", 4, cores=2) == 1
    assert torch_threads("threads", 4, cores=16) == 16
    assert torch_threads("solo", 1, cores=2) == 2


def test_every_task_queue_is_consumed_by_default_and_unknown_queues_are_refused():
    assert parse_queues(None) == list(ALL_QUEUES)
    assert parse_queues("lstmq.render") == ["lstmq.render"]
    with pytest.raises(click.BadParameter, match="unknown queue nope"):
        parse_queues("lstmq.classify,nope")


def test_the_celery_command_line_names_queues_pool_and_concurrency():
    argv = celery_argv(["lstmq.classify"], "prefork", 2, "info", None)
    assert argv[0] == "worker"
    assert {"--queues=lstmq.classify", "--pool=prefork", "--concurrency=2"} <= set(argv)


def run_worker(env: dict, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "cmd", [("-m", "lstmq", "worker"), ("-m", "celery", "-A", "lstmq.worker.celery_app", "worker")]
)
def test_a_worker_refuses_a_database_without_the_current_schema(lstmq_env, cmd):
    lstmq_env()
    result = run_worker(worker_env(), *cmd)
    assert result.returncode != 0
    assert "error: database schema is empty" in result.stderr and "lstmq db upgrade" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_refuses_an_unreachable_broker_in_one_line(lstmq_env, tmp_path):
    from lstmq.db.engine import get_engine
    from lstmq.db.migrate import upgrade

    lstmq_env(broker_url="redis://127.0.0.1:1/0")
    upgrade(get_engine())
    result = run_worker(worker_env(), "-m", "lstmq", "worker")
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: broker redis://127.0.0.1:1/0 unreachable")
    assert "Traceback" not in result.stderr


def test_a_worker_asked_for_cuda_on_a_host_without_it_refuses_in_one_line(lstmq_env):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    lstmq_env()
    result = run_worker(worker_env(), "-m", "lstmq", "worker", "--device=cuda")
    assert result.returncode != 0
    assert result.stderr.strip() == "error: device 'cuda' requested but CUDA is not available"


def test_the_worker_parent_never_imports_torch(lstmq_env):
    """A prefork parent that had initialised torch (or CUDA) would hand that state to its children."""
    lstmq_env()
    code = "import sys, lstmq.worker.celery_app, lstmq.worker.tasks, lstmq.worker.cli; print('torch' in sys.modules)"
    result = run_worker(worker_env(), "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
