"""CPU seconds burnt during a bench run, split into producer, worker and the rest of the machine.

Docs/s per stage say which stage is slowest, not whether the cores are simply used up: on a
shared 2-core machine the producer, the worker and the services compete for the same cycles.
Linux's ``/proc`` says who used how much: ``/proc/stat`` the busy time of all cores, and
``/proc/PID/stat`` a process's own time (``utime + stime``, all threads) plus the time of its
children it has reaped (``cutime + cstime``). The parsers take the text, so tests feed fixed
samples; ``read_*`` are the only functions that touch the files.

A worker's descendants (prefork pool children) are found through their parent ids. A child that
exits during the window is reaped by its parent, whose ``cutime + cstime`` then holds all of the
child's time: summing ``own + children`` over the tree at the start and at the end counts it
exactly, without sampling in between. Only a descendant whose parent died first (reparented out
of the tree) would be lost; for it the last reading taken is kept.

Some parents never collect their children's time: Ray's raylet ignores SIGCHLD, so a worker of
it that exits is reaped by the kernel and its time reaches no ``cutime``. ``SampledMeter`` reads
such a tree every fraction of a second instead, and counts each process by its own readings.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# /proc/stat "cpu" line: user nice system idle iowait irq softirq steal guest guest_nice.
# guest and guest_nice are already inside user and nice, so they are not summed again.
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
ALL_FIELDS = range(8)


@dataclass(frozen=True)
class MachineTimes:
    """Clock ticks since boot, summed over all cores, and how many cores there are."""

    busy: int
    total: int
    cores: int


@dataclass(frozen=True)
class ProcessTimes:
    """One ``/proc/PID/stat`` line: ids, start time (ticks since boot: with the pid, a key that a
    reused pid cannot match), own ticks and the ticks of reaped children."""

    pid: int
    ppid: int
    start: int
    own: int
    children: int

    @property
    def key(self) -> tuple[int, int]:
        return self.pid, self.start


@dataclass(frozen=True)
class Usage:
    """CPU seconds during a window of ``wall`` seconds."""

    wall: float
    producer: float
    worker: float
    busy: float  # all cores, every process
    busy_fraction: float  # of all cores' time
    cores: int

    @property
    def rest(self) -> float:
        """Database, broker and anything else running (tick rounding may take it just below 0)."""
        return max(self.busy - self.producer - self.worker, 0.0)


def parse_machine(text: str) -> MachineTimes:
    """The aggregate ``cpu`` line of ``/proc/stat`` and the number of ``cpuN`` lines."""
    lines = text.splitlines()
    total_line = next(line for line in lines if line.split()[0] == "cpu")
    ticks = [int(field) for field in total_line.split()[1:]]
    cores = sum(1 for line in lines if line.startswith("cpu") and line.split()[0][3:].isdigit())
    return MachineTimes(busy=sum(ticks[i] for i in BUSY_FIELDS), total=sum(ticks[i] for i in ALL_FIELDS), cores=cores)


def parse_process(text: str) -> ProcessTimes:
    """A ``/proc/PID/stat`` line. The name (field 2) sits in parentheses and may itself hold
    spaces and parentheses, so the fields are counted from its last ``)``."""
    pid = int(text.split(" (", 1)[0])
    fields = text[text.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    field = lambda n: int(fields[n - 3])  # noqa: E731 (man 5 proc numbers fields from 1)
    return ProcessTimes(pid, ppid=field(4), start=field(22), own=field(14) + field(15), children=field(16) + field(17))


def descendants(root: int, parents: dict[int, int]) -> set[int]:
    """``root`` and every process below it, given each process's parent id."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def tree(
    root: int, processes: Iterable[ProcessTimes], exclude: int | None = None
) -> dict[tuple[int, int], ProcessTimes]:
    """The readings of ``root`` and its descendants among ``processes``, less the subtree of
    ``exclude`` when given."""
    by_pid = {process.pid: process for process in processes}
    parents = {pid: process.ppid for pid, process in by_pid.items()}
    members = descendants(root, parents) - (descendants(exclude, parents) if exclude else set())
    return {by_pid[pid].key: by_pid[pid] for pid in members if pid in by_pid}


def tree_ticks(samples: list[dict[tuple[int, int], ProcessTimes]]) -> int:
    """Ticks the tree used between its first and last sample (``tree`` readings, in order).

    At the end every live member counts ``own + children``: a member that exited meanwhile is in
    its parent's ``children``. One whose parent is gone as well is counted by its last reading.
    What each member had at the first sample is subtracted."""
    first, last = samples[0], samples[-1]
    last_seen = {key: process for sample in samples for key, process in sample.items()}
    alive = {pid for pid, _ in last}
    end = sum(
        process.own + process.children for key, process in last_seen.items() if key in last or process.ppid not in alive
    )
    return end - sum(process.own + process.children for process in first.values())


def own_ticks(samples: list[dict[tuple[int, int], ProcessTimes]]) -> int:
    """Ticks the tree used between its first and last sample, each member counted by its own
    readings alone (``own``, never ``children``): for a tree whose parents do not collect their
    children's time. A member missing from the first sample started after it: all of its time
    counts. What a member used after its last reading is lost, so sample more often than members
    exit."""
    first = samples[0]
    last_seen = {key: process for sample in samples for key, process in sample.items()}
    return sum(process.own - (first[key].own if key in first else 0) for key, process in last_seen.items())


def usage(
    wall: float,
    producer_seconds: float,
    worker_ticks: int,
    machine_before: MachineTimes,
    machine_after: MachineTimes,
    ticks_per_second: int,
) -> Usage:
    busy = machine_after.busy - machine_before.busy
    total = machine_after.total - machine_before.total
    return Usage(
        wall=wall,
        producer=producer_seconds,
        worker=worker_ticks / ticks_per_second,
        busy=busy / ticks_per_second,
        busy_fraction=busy / total if total > 0 else 0.0,
        cores=machine_after.cores,
    )


def report_lines(use: Usage | None, documents: int, model_seconds: float) -> list[str]:
    """CPU per document for each party, how busy the cores were, and the rate that the cores
    allow if every document costs that much CPU. ``model_seconds``: CPU per document of the model
    alone, measured in (a), the part of the worker's CPU that is not lstmq's."""
    if use is None:
        return ["CPU accounting unavailable here (no /proc): CPU per document not measured"]
    us = lambda seconds: seconds / documents * 1e6  # noqa: E731 (µs per document)
    total = us(use.producer + use.worker + use.rest)
    ceiling = use.cores / (total / 1e6) if total > 0 else float("inf")
    return [
        f"CPU per document: producer {us(use.producer):,.0f} µs, worker {us(use.worker):,.0f} µs"
        f" (the model alone: {us(model_seconds * documents):,.0f} µs), database + broker + rest {us(use.rest):,.0f} µs;"
        f" total {total:,.0f} µs",
        f"{use.cores} cores were {use.busy_fraction:.0%} busy during (p) ('rest' includes any other process on"
        f" the machine); CPU-bound ceiling here: {use.cores} cores / {total:,.0f} µs = {ceiling:,.0f} docs/s",
    ]


def ticks_per_second() -> int:
    return os.sysconf("SC_CLK_TCK")


def available(proc: Path = PROC) -> bool:
    return (proc / "stat").is_file() and (proc / "self" / "stat").is_file()


def read_machine(proc: Path = PROC) -> MachineTimes:
    return parse_machine((proc / "stat").read_text())


def read_tree(root: int, proc: Path = PROC, exclude: int | None = None) -> dict[tuple[int, int], ProcessTimes]:
    """``tree`` of the processes running now (one that exits while being read is skipped)."""
    processes = []
    for path in proc.glob("[0-9]*/stat"):
        try:
            processes.append(parse_process(path.read_text()))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return tree(root, processes, exclude)


class Meter:
    """CPU used from ``__init__`` to ``stop()`` by this process (the producer: user + system of all
    its threads, as ``os.times`` gives them but finer than a tick), the tree under ``worker_pid``,
    and the machine. ``stop()`` gives None where /proc is missing."""

    def __init__(self, worker_pid: int, proc: Path = PROC) -> None:
        self.worker_pid, self.proc, self.on = worker_pid, proc, available(proc)
        if self.on:
            self.samples = [read_tree(worker_pid, proc)]
            self.machine = read_machine(proc)
            self.cpu, self.start = time.process_time(), time.perf_counter()

    def sample(self) -> None:
        """Another reading of the worker's tree (keeps the last of a member whose parent dies)."""
        if self.on:
            self.samples.append(read_tree(self.worker_pid, self.proc))

    def stop(self) -> Usage | None:
        if not self.on:
            return None
        producer, wall = time.process_time() - self.cpu, time.perf_counter() - self.start
        self.sample()
        machine = read_machine(self.proc)
        return usage(wall, producer, tree_ticks(self.samples), self.machine, machine, ticks_per_second())


class SampledMeter:
    """CPU used from ``__init__`` to ``stop()`` by the tree under ``root`` (itself included: its
    ``Usage.producer`` is 0) less the subtree of ``exclude``, and by the machine, for a tree whose
    parents do not collect their children's time: a thread reads the tree every ``interval_s``
    and ``own_ticks`` counts it. ``stop()`` gives None where /proc is missing."""

    def __init__(self, root: int, exclude: int | None = None, interval_s: float = 0.5, proc: Path = PROC) -> None:
        self.root, self.exclude, self.proc, self.on = root, exclude, proc, available(proc)
        if self.on:
            self.samples = [read_tree(root, proc, exclude)]
            self.machine, self.start = read_machine(proc), time.perf_counter()
            self.done = threading.Event()
            self.reader = threading.Thread(target=self._read_every, args=(interval_s,), daemon=True)
            self.reader.start()

    def _read_every(self, interval_s: float) -> None:
        while not self.done.wait(interval_s):
            self.samples.append(read_tree(self.root, self.proc, self.exclude))

    def stop(self) -> Usage | None:
        if not self.on:
            return None
        self.done.set()
        self.reader.join()
        wall = time.perf_counter() - self.start
        self.samples.append(read_tree(self.root, self.proc, self.exclude))
        machine = read_machine(self.proc)
        return usage(wall, 0.0, own_ticks(self.samples), self.machine, machine, ticks_per_second())
