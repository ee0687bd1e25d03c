"""Batches in flight in one worker share the model's passes (``lstmq.worker.ml.coalesce``)."""

from __future__ import annotations

import threading

import pytest
import torch

from lstmq.worker.ml.classifier.artifact import load_artifact
from lstmq.worker.ml.classifier.inference import Classifier
from lstmq.worker.ml.coalesce import Coalescer
from tests.support.threads import run_together
from tests.support.tiny_classifier import make_tiny_classifier
from tests.support.waiting import wait_until


class Model:
    """Doubles numbers; its first pass waits until ``release`` is set; records every pass."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.passes: list[list[int]] = []
        self.running, self.release = threading.Event(), threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: list[int]) -> list[int]:
        self.passes.append(list(items))
        if len(self.passes) == 1:
            self.running.set()
            self.release.wait(timeout=30)
        if self.fail_on in items:
            raise RuntimeError("out of memory")
        return [2 * item for item in items]


def call_in_thread(coalescer: Coalescer, items: list[int], outputs: dict) -> threading.Thread:
    def call() -> None:
        try:
            outputs[items[0]] = coalescer(items)
        except RuntimeError as exc:
            outputs[items[0]] = exc

    thread = threading.Thread(target=call)
    thread.start()
    return thread


def start_blocked_pass(coalescer: Coalescer, model: Model, outputs: dict) -> threading.Thread:
    """A first caller whose pass holds the model until ``model.release`` is set."""
    first = call_in_thread(coalescer, [1, 2], outputs)
    assert model.running.wait(timeout=30)
    return first


def queue_behind(coalescer: Coalescer, outputs: dict, *batches: list[int]) -> list[threading.Thread]:
    threads = [call_in_thread(coalescer, batch, outputs) for batch in batches]
    wait_until(lambda: len(coalescer._waiting) == len(batches), 30, "the callers to queue")
    return threads


def test_a_lone_caller_gets_the_model_output_of_its_items():
    model = Model()
    model.release.set()
    assert Coalescer(model, max_items=8)([3, 4, 5]) == [6, 8, 10]


def test_batches_that_wait_while_the_model_runs_share_the_next_pass():
    model, outputs = Model(), {}
    coalescer = Coalescer(model, max_items=8)
    first = start_blocked_pass(coalescer, model, outputs)
    others = queue_behind(coalescer, outputs, [10, 11], [20], [30, 31, 32])
    model.release.set()
    for thread in [first, *others]:
        thread.join(timeout=30)
    assert model.passes == [[1, 2], [10, 11, 20, 30, 31, 32]]
    assert outputs == {1: [2, 4], 10: [20, 22], 20: [40], 30: [60, 62, 64]}


def test_a_pass_takes_the_oldest_batches_that_fit_its_budget():
    model, outputs = Model(), {}
    coalescer = Coalescer(model, max_items=3)
    first = start_blocked_pass(coalescer, model, outputs)
    others = queue_behind(coalescer, outputs, [10, 11], [20, 21], [30])
    model.release.set()
    for thread in [first, *others]:
        thread.join(timeout=30)
    assert model.passes == [[1, 2], [10, 11], [20, 21, 30]]
    assert outputs[20] == [40, 42] and outputs[30] == [60]


def test_a_failed_pass_fails_only_the_batches_in_it():
    model, outputs = Model(fail_on=20), {}
    coalescer = Coalescer(model, max_items=3)
    first = start_blocked_pass(coalescer, model, outputs)
    others = queue_behind(coalescer, outputs, [20, 21], [30], [40, 41])
    model.release.set()
    for thread in [first, *others]:
        thread.join(timeout=30)
    assert isinstance(outputs[20], RuntimeError) and isinstance(outputs[30], RuntimeError)
    assert outputs[1] == [2, 4] and outputs[40] == [80, 82]
    assert coalescer([7]) == [14]  # the model serves on


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model, tokenizer, _ = load_artifact(make_tiny_classifier(tmp_path_factory.mktemp("tiny")))
    return Classifier("tiny", "v1", model, tokenizer, ["neg", "pos"], 16, torch.device("cpu"))


def test_threads_sharing_a_classifier_get_what_each_would_get_alone(tiny):
    texts = [
        [" ".join(["a good", "a bad", "film"][(i + j + k) % 3] for k in range(j % 7 + 1)) for j in range(40)]
        for i in range(6)
    ]
    probs = lambda batch: [p for row in tiny.predict(batch) for p in row.probs]  # noqa: E731
    alone = [probs(batch) for batch in texts]
    together = run_together(probs, texts)
    for i, expected in enumerate(alone):  # merged passes pad differently: equal up to float rounding
        assert together[i] == pytest.approx(expected, abs=1e-5)
