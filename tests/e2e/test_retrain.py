"""A running worker classifies with the model as installed now. After
`lstmq train classifier --name mine` replaces the artifact, the next batch uses the new weights
and its rows carry the new model version."""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import select

from lstmq.cli import main
from lstmq.db.schema import Classification, Document
from lstmq.modelstore import find_model
from tests.support.inputs import corpus
from tests.support.stacks import open_stack

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast

WORDS = {"world": "minister election talks war".split(), "business": "shares profit market oil".split()}


def train_mine(folder, seed: int) -> None:
    """A tiny `mine` trained through the CLI on data drawn from ``seed``."""
    rng = random.Random(seed)
    for split, n in (("train", 60), ("dev", 20)):
        rows = [{"text": " ".join(rng.choices(words, k=5)), "label": label} for label, words in WORDS.items()] * n
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["train", "classifier", "--name", "mine", "--seed", str(seed), "--epochs", "1", "--device", "cpu"]
    argv += ["--embed-dim", "8", "--hidden-dim", "8", "--min-frequency", "1", "--max-tokens", "12"]
    argv += ["--train", str(folder / "train.jsonl"), "--dev", str(folder / "dev.jsonl")]
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), f"training failed with exit code {exc.code}"


def versions_of(stack, job_id: str) -> set[str]:
    with stack.engine.connect() as conn:
        query = select(Classification.model_version).join(Document).where(Document.job_id == job_id)
        return set(conn.scalars(query))


@pytest.fixture
def stack(request, tmp_path):
    with open_stack(request, "services", tmp_path / "home") as stack:
        yield stack


def test_a_model_retrained_under_a_running_worker_is_used_for_the_next_batch(stack, tmp_path):
    train_mine(tmp_path, seed=1)
    stack.start_worker()
    first = stack.submit(corpus(tmp_path / "a.jsonl", 10), model="mine")
    stack.wait_finished(first.job_id)
    train_mine(tmp_path, seed=2)
    second = stack.submit(corpus(tmp_path / "b.jsonl", 10), model="mine")
    stack.wait_finished(second.job_id)

    old, new = versions_of(stack, first.job_id), versions_of(stack, second.job_id)
    assert old != new and new == {find_model("mine").version}
