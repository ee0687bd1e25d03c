"""Stage counters (lstmq.stages): what each stage handled and the time it took, in this process
and summed over the processes that flushed them."""

from __future__ import annotations

import time

import pytest

from lstmq import stages
from lstmq.bench.materials import since, slowest


@pytest.fixture(autouse=True)
def fresh_counters():
    stages.reset()
    yield
    stages.reset()


def test_a_timed_block_adds_its_items_and_seconds_even_when_it_raises():
    with stages.timed("record", 500):
        time.sleep(0.01)
    with pytest.raises(RuntimeError), stages.timed("record", 250):
        raise RuntimeError("database gone")
    record = stages.snapshot()["record"]
    assert record.items == 750 and 0.01 <= record.seconds < 1
    assert record.rate == pytest.approx(750 / record.seconds)


def test_counted_passes_items_through_and_times_only_their_production():
    def slow_reader():
        for n in range(3):
            time.sleep(0.01)
            yield n

    seen = []
    for n in stages.counted("read", slow_reader()):
        seen.append(n)
        time.sleep(0.3)  # the consumer's time (0.9 s in all) is not the reader's
    read = stages.snapshot()["read"]
    assert seen == [0, 1, 2] and read.items == 3 and 0.03 <= read.seconds < 0.6


def test_an_abandoned_iteration_still_counts_what_it_read():
    items = stages.counted("read", iter(range(10)))
    assert [next(items), next(items)] == [0, 1]
    items.close()
    assert stages.snapshot()["read"].items == 2


def test_snapshots_are_copies_and_reset_forgets():
    stages.add("send", 10, 1.0)
    before = stages.snapshot()
    stages.add("send", 5, 1.0)
    assert (before["send"].items, stages.snapshot()["send"].items) == (10, 15)
    stages.reset()
    assert stages.snapshot() == {}


def test_a_stage_without_measurable_time_has_no_finite_rate():
    assert stages.Stage(5, 0.0).rate == float("inf")


def test_flushed_counters_of_several_processes_are_summed(tmp_path, monkeypatch):
    stages.flush()  # not asked to: writes nothing
    monkeypatch.setenv(stages.STAGES_DIR_ENV, str(tmp_path))
    stages.add("model", 256, 0.5)
    stages.flush()
    (tmp_path / "other.json").write_text('{"model": [256, 1.5], "write results": [256, 0.25]}')
    total = stages.collect(tmp_path)
    assert (total["model"].items, total["model"].seconds) == (512, 2.0)
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".json"] == []  # no half-written files


def test_the_bench_reports_what_was_counted_between_two_readings_and_the_slowest_stage():
    before = {"model": stages.Stage(100, 1.0)}
    after = {"model": stages.Stage(1100, 2.0), "receive": stages.Stage(1000, 0.1), "idle": stages.Stage(0, 0.0)}
    between = since(after, before)
    assert {name: (s.items, s.seconds) for name, s in between.items()} == {"model": (1000, 1.0), "receive": (1000, 0.1)}
    assert slowest(between) == "slowest stage: model (1,000 docs/s)"
