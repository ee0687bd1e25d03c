"""CPU accounting of `lstmq bench pipeline` (lstmq.bench.cpu_usage): /proc parsing, the worker's
process tree, the per-document arithmetic, the path without /proc, and one real measurement."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lstmq.bench import cpu_usage
from lstmq.bench.cpu_usage import MachineTimes, ProcessTimes, Usage

# Verbatim layout of /proc/stat (2 cores); guest (9th) and guest_nice (10th) are already in user/nice.
PROC_STAT = """\
cpu  25455 201 5067 67292 746 3 292 19 40 1
cpu0 9538 2 1836 37953 111 1 93 4 20 0
cpu1 15917 198 3231 29338 634 2 198 15 20 1
intr 499212 0 0 0
ctxt 1352131
btime 1700000000
processes 8400
procs_running 2
"""


def stat_line(pid: int, name: str, ppid: int, start: int, utime: int, stime: int, cutime: int, cstime: int) -> str:
    """A /proc/PID/stat line with the fields this module reads set, the others as a kernel writes them."""
    fields = [f"{pid} ({name}) S {ppid} {pid} {pid} 0 -1 4194304 103 0 0 0"]
    fields += [str(n) for n in (utime, stime, cutime, cstime, 20, 0, 1, 0, start, 3133440, 389)]
    return " ".join(fields) + " 18446744073709551615 94364222844928 0 0 0 0 17 1 0 0 0 0 0\n"


def test_machine_busy_time_sums_user_nice_system_irq_softirq_steal_of_all_cores():
    machine = cpu_usage.parse_machine(PROC_STAT)
    assert machine == MachineTimes(
        busy=25455 + 201 + 5067 + 3 + 292 + 19, total=25455 + 201 + 5067 + 67292 + 746 + 3 + 292 + 19, cores=2
    )


def test_a_process_line_is_read_from_the_last_parenthesis_whatever_the_name_holds():
    verbatim = (
        "8324 (cat) R 8322 8322 6202 0 -1 4194304 103 0 0 0 7 2 0 0 20 0 1 0 49965 3133440 389"
        " 18446744073709551615 94364222844928 94364222864809 140729364627088 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
    )
    assert cpu_usage.parse_process(verbatim) == ProcessTimes(8324, ppid=8322, start=49965, own=9, children=0)
    for name in ("celery (worker)", "a) b (c", "x y) 1 2 3"):
        line = stat_line(41, name, ppid=7, start=500, utime=150, stime=30, cutime=7, cstime=3)
        assert cpu_usage.parse_process(line) == ProcessTimes(41, ppid=7, start=500, own=180, children=10), name


def test_descendants_follow_parent_ids_through_generations_and_nothing_else():
    parents = {1: 0, 100: 1, 200: 100, 201: 100, 300: 201, 400: 1, 401: 400, 500: 300}
    assert cpu_usage.descendants(100, parents) == {100, 200, 201, 300, 500}
    assert cpu_usage.descendants(200, parents) == {200}
    assert cpu_usage.descendants(999, parents) == {999}  # gone: only itself, nobody adopted


def test_the_tree_keeps_the_readings_of_the_worker_and_its_descendants():
    lines = [
        stat_line(1, "init", 0, 1, 9, 9, 9, 9),
        stat_line(100, "celery (main)", 1, 50, 10, 0, 0, 0),
        stat_line(200, "celery (pool 1)", 100, 60, 5, 0, 0, 0),
        stat_line(300, "postgres", 1, 20, 70, 0, 0, 0),
    ]
    tree = cpu_usage.tree(100, [cpu_usage.parse_process(line) for line in lines])
    assert sorted(tree) == [(100, 50), (200, 60)]


def test_the_tree_can_leave_out_a_subtree():
    processes = [proc(10, 1, 0), proc(20, 10, 0), proc(30, 10, 0), proc(31, 30, 0), proc(40, 20, 0)]
    assert sorted(cpu_usage.tree(10, processes, exclude=30)) == [(10, 0), (20, 0), (40, 0)]


def proc(pid: int, ppid: int, own: int, children: int = 0, start: int = 0) -> ProcessTimes:
    return ProcessTimes(pid, ppid, start, own, children)


def sample(*processes: ProcessTimes) -> dict:
    return {process.key: process for process in processes}


def test_a_pool_child_that_exits_counts_once_through_its_parents_reaped_time():
    start = sample(proc(100, 1, own=10), proc(200, 100, own=40))
    # 200 ran 25 more ticks and was reaped: its 65 are in the parent's children; 300 was forked
    end = sample(proc(100, 1, own=15, children=65), proc(300, 100, own=8, start=9))
    assert cpu_usage.tree_ticks([start, end]) == 5 + 25 + 8


def test_a_descendant_whose_parent_died_first_counts_its_last_reading():
    start = sample(proc(100, 1, own=10), proc(200, 100, own=0), proc(300, 200, own=1))
    middle = sample(proc(100, 1, own=11), proc(200, 100, own=2), proc(300, 200, own=31))
    # 200 exited (reaped by 100: its 2 are in 100's children); 300 was adopted out of the tree and died
    end = sample(proc(100, 1, own=12, children=2))
    assert cpu_usage.tree_ticks([start, middle, end]) == 2 + 2 + 30


def test_a_reused_pid_is_another_process():
    start = sample(proc(100, 1, own=10), proc(200, 100, own=40, start=5))
    # the old 200 was reaped (40 + 10 more); a new 200 has run 3 ticks
    end = sample(proc(100, 1, own=10, children=50), proc(200, 100, own=3, start=70))
    assert cpu_usage.tree_ticks([start, end]) == 10 + 3


def test_own_ticks_count_each_member_by_its_own_readings_whatever_its_parent_collected():
    # 100 ignores SIGCHLD (as Ray's raylet does): 200's time never reaches its children field
    start = sample(proc(100, 1, own=10), proc(200, 100, own=40))
    middle = sample(proc(100, 1, own=12), proc(200, 100, own=55), proc(300, 100, own=4, start=9))
    end = sample(proc(100, 1, own=15, children=999), proc(300, 100, own=8, start=9))
    assert cpu_usage.own_ticks([start, middle, end]) == 5 + 15 + 8
    assert cpu_usage.tree_ticks([start, middle, end]) != 5 + 15 + 8  # why own_ticks exists


def test_cpu_per_document_and_the_ceiling_the_cores_allow():
    use = Usage(wall=1.1, producer=0.41, worker=0.95, busy=1.98, busy_fraction=0.91, cores=2)
    assert use.rest == pytest.approx(0.62)
    lines = cpu_usage.report_lines(use, documents=10_000, model_seconds=20e-6)
    assert lines[0] == (
        "CPU per document: producer 41 µs, worker 95 µs (the model alone: 20 µs),"
        " database + broker + rest 62 µs; total 198 µs"
    )
    assert lines[1].startswith("2 cores were 91% busy during (p) ('rest' includes any other process")
    assert lines[1].endswith("CPU-bound ceiling here: 2 cores / 198 µs = 10,101 docs/s")


def test_usage_converts_ticks_and_takes_the_busy_share_of_the_window():
    before, after = MachineTimes(busy=1000, total=3000, cores=2), MachineTimes(busy=1182, total=3200, cores=2)
    use = cpu_usage.usage(1.0, 0.5, worker_ticks=90, machine_before=before, machine_after=after, ticks_per_second=100)
    assert (use.worker, use.busy, use.busy_fraction, use.cores) == (0.9, 1.82, 0.91, 2)
    assert use.rest == pytest.approx(0.42)


def test_without_proc_the_bench_says_so_and_carries_on(tmp_path):
    assert not cpu_usage.available(tmp_path)
    meter = cpu_usage.Meter(12345, proc=tmp_path)
    meter.sample()
    assert meter.stop() is None
    assert cpu_usage.SampledMeter(12345, proc=tmp_path).stop() is None
    assert cpu_usage.report_lines(None, documents=100, model_seconds=1e-5) == [
        "CPU accounting unavailable here (no /proc): CPU per document not measured"
    ]


# A stand-in worker: on "go" it forks a child that burns 0.2 s of CPU and exits (reaped: the
# parent's children time), then one that burns 0.2 s and stays alive; says "done" once both burnt.
WORKER = textwrap.dedent(
    """
    import subprocess, sys
    BURN = "import sys, time\\nwhile time.process_time() < 0.2: pass\\nprint('burnt', flush=True)\\nsys.stdin.read()"
    print("ready", flush=True)
    sys.stdin.readline()
    subprocess.run([sys.executable, "-c", BURN], stdout=subprocess.PIPE, input=b"", check=True)
    alive = subprocess.Popen([sys.executable, "-c", BURN], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    alive.stdout.readline()
    print("done", flush=True)
    sys.stdin.readline()
    alive.stdin.close()
    alive.wait()
    """
)


@pytest.mark.skipif(not cpu_usage.available(), reason="no /proc")
def test_the_cpu_of_a_workers_exited_and_live_children_is_counted():
    worker = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline() == "ready\n"
        meter = cpu_usage.Meter(worker.pid)
        worker.stdin.write("go\n")
        worker.stdin.flush()
        assert worker.stdout.readline() == "done\n"
        use = meter.stop()
    finally:
        worker.stdin.close()
        worker.wait(timeout=60)
    assert use is not None
    assert use.worker >= 0.3, use  # two children of 0.2 s each (tick rounding: 10 ms a reading)
    assert use.busy >= use.worker - 0.05, use


# A stand-in raylet: it ignores SIGCHLD, so the kernel reaps its children and their time reaches
# no children field; on "go" it runs a child that burns 0.2 s of CPU and exits, then says "done".
IGNORING_PARENT = textwrap.dedent(
    """
    import signal, subprocess, sys
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    BURN = "import time\\nwhile time.process_time() < 0.2: pass"
    print("ready", flush=True)
    sys.stdin.readline()
    subprocess.run([sys.executable, "-c", BURN])  # its wait finds no child: ECHILD, handled
    print("done", flush=True)
    sys.stdin.readline()
    """
)


@pytest.mark.skipif(not cpu_usage.available(), reason="no /proc")
def test_the_sampled_meter_counts_a_child_whose_parent_never_collects_its_time():
    parent = subprocess.Popen(
        [sys.executable, "-c", IGNORING_PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout.readline() == "ready\n"
        meter, sampled = cpu_usage.Meter(parent.pid), cpu_usage.SampledMeter(parent.pid, interval_s=0.02)
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline() == "done\n"
        use, sampled_use = meter.stop(), sampled.stop()
    finally:
        parent.stdin.close()
        parent.wait(timeout=60)
    assert use is not None and sampled_use is not None
    assert use.worker < 0.1, use  # the child's time is in no reading that Meter takes
    assert sampled_use.worker >= 0.15, sampled_use  # at most one interval of the child's time is lost
    assert sampled_use.producer == 0.0
