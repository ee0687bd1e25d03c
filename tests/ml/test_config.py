"""Training options a user can get wrong are refused before any work, with one line naming the
option (they used to end in a traceback, or were silently ignored)."""

from __future__ import annotations

import pytest

from lstmq.errors import InputError
from lstmq.worker.ml.classifier.config import TrainConfig
from tests.support.processes import run_lstmq


@pytest.mark.parametrize(
    "option, message",
    [
        ({"tokenizer": "char"}, "--tokenizer must be one of word, bpe, not 'char'"),
        ({"pooling": "sum"}, "--pooling must be one of max, maxmean, attention, not 'sum'"),
        ({"class_weight": "heavy"}, "--class-weight must be one of none, balanced, not 'heavy'"),
        ({"epochs": 0}, "--epochs must be at least 1, not 0"),
        ({"batch_size": -4}, "--batch-size must be at least 1, not -4"),
        ({"members": 0}, "--members must be at least 1, not 0"),
        ({"max_train_rows": 0}, "--max-train-rows must be at least 1, not 0"),
        ({"dropout": 1.0}, "--dropout must be in [0, 1), not 1.0"),
        ({"word_dropout": -0.1}, "--word-dropout must be in [0, 1), not -0.1"),
        ({"lr": 0.0}, "--lr must be greater than 0, not 0.0"),
        ({"max_minutes": -1.0}, "--max-minutes must be greater than 0, not -1.0"),
        ({"weight_decay": -0.01}, "--weight-decay must be at least 0, not -0.01"),
        ({"vocab_size": 2}, "--vocab-size must be at least 3 for the word tokenizer, not 2"),
        ({"tokenizer": "bpe", "vocab_size": 100}, "--vocab-size must be at least 259 for the bpe tokenizer, not 100"),
    ],
)
def test_a_bad_training_option_is_refused_naming_it(option, message):
    with pytest.raises(InputError) as refused:
        TrainConfig(**option)
    assert str(refused.value) == message


def test_the_defaults_and_the_documented_minimal_model_are_accepted():
    TrainConfig()
    TrainConfig(vocab_size=2000, max_tokens=8, embed_dim=8, hidden_dim=4, epochs=1, max_train_rows=2000)


def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"}\n')
    args = ("train", "classifier", "--name", "x", "--train", str(data), "--dev", str(data), "--epochs", "0")
    done = run_lstmq(*args, "--out", str(tmp_path / "x"))
    assert (done.returncode, done.stderr.decode().splitlines()) == (2, ["error: --epochs must be at least 1, not 0"])
