"""Training a tiny classifier, saving/loading it, and what inference gives for every kind of input."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch

from lstmq.worker.ml.classifier.artifact import load_artifact, save_artifact
from lstmq.worker.ml.classifier.config import TrainConfig
from lstmq.worker.ml.classifier.data import Labelled
from lstmq.worker.ml.classifier.inference import Classifier
from lstmq.worker.ml.classifier.train import eval_steps, train_classifier

TOPICS = {
    "sport": "goal match team coach league score player season win cup".split(),
    "money": "bank stock market price profit shares trade invest fund rate".split(),
    "space": "rocket orbit planet nasa launch moon star telescope mars probe".split(),
}


FILLER = "the a of and to in on is was for with it this that at by".split()


def synthetic(n: int, seed: int) -> Labelled:
    """Texts whose topic shows in a few keywords among filler words."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = sorted(TOPICS)[i % 3]
        words = rng.choices(FILLER, k=rng.randint(4, 12)) + rng.choices(TOPICS[label], k=2)
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return Labelled(texts, labels, f"synthetic-{seed}")


TINY = dict(embed_dim=16, hidden_dim=16, epochs=4, batch_size=16, lr=0.01, patience=4, max_tokens=16, min_frequency=1)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    result = train_classifier(synthetic(300, 1), synthetic(60, 2), TrainConfig(**TINY), torch.device("cpu"))
    return result


@pytest.fixture(scope="module")
def classifier(trained, tmp_path_factory):
    path = save_artifact(
        tmp_path_factory.mktemp("models") / "topics", trained.model, trained.tokenizer, trained.labels, 16
    )
    model, tok, config = load_artifact(path)
    return Classifier("topics", "v", model, tok, config["labels"], config["max_tokens"], torch.device("cpu"))


def test_tiny_training_learns_well_above_chance_on_held_out_rows(trained, classifier):
    held_out = synthetic(150, 3)
    preds = classifier.predict(held_out.texts)
    accuracy = sum(p.label == g for p, g in zip(preds, held_out.labels, strict=True)) / len(held_out)
    assert accuracy > 0.8  # chance is 1/3
    assert trained.dev_report["accuracy"] > 0.8


def test_training_is_reproducible_for_a_seed(trained):
    again = train_classifier(synthetic(300, 1), synthetic(60, 2), TrainConfig(**TINY), torch.device("cpu"))
    for a, b in zip(trained.model.state_dict().values(), again.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_save_then_load_predicts_bit_identically(trained, classifier):
    texts = synthetic(40, 4).texts
    before = Classifier("t", "v", trained.model, trained.tokenizer, trained.labels, 16, torch.device("cpu"))
    assert [p.probs for p in before.predict(texts)] == [p.probs for p in classifier.predict(texts)]


def test_predictions_come_back_in_input_order(classifier):
    texts = [t for t in synthetic(60, 5).texts] + ["goal " * 15, "bank"]
    batched = classifier.predict(texts)
    one_by_one = [classifier.predict([t])[0] for t in texts]
    assert [p.label for p in batched] == [p.label for p in one_by_one]
    for a, b in zip(batched, one_by_one, strict=True):
        assert a.probs == pytest.approx(b.probs, abs=1e-5)


def test_prediction_carries_label_score_and_full_probabilities(classifier):
    (pred,) = classifier.predict(["goal match team"])
    assert pred.label == "sport" and pred.error is None and pred.flags == []
    assert len(pred.probs) == 3 and sum(pred.probs) == pytest.approx(1.0, abs=1e-5)
    assert pred.score == max(pred.probs) == pred.probs[classifier.labels.index("sport")]


def test_bad_inputs_never_break_the_batch(classifier):
    texts = ["", "   \n\t", "goal " * 250_000, "zzz qqq xxyy", None, "bank stock"]
    empty, blank, huge, unknown, not_text, fine = classifier.predict(texts)
    assert empty.error == blank.error == "empty text" and empty.label is None and empty.probs is None
    assert not_text.error == "text is not a string"
    assert huge.label == "sport" and huge.flags == ["truncated"] and huge.error is None
    assert unknown.flags == ["no_known_tokens"] and unknown.label in classifier.labels
    assert fine.label == "money" and fine.flags == [] and fine.error is None


def test_an_all_bad_batch_returns_only_errors(classifier):
    assert [p.error for p in classifier.predict(["", " "])] == ["empty text", "empty text"]
    assert classifier.predict([]) == []


def test_ensemble_members_are_trained_with_different_seeds_and_reported_one_by_one():
    cfg = TrainConfig(**{**TINY, "epochs": 1, "members": 2})
    seen = []
    result = train_classifier(
        synthetic(90, 1),
        synthetic(30, 2),
        cfg,
        torch.device("cpu"),
        on_member=lambda r: seen.append(len(r.model.members)),
    )
    first, second = (m.head.weight for m in result.model.members)
    assert not torch.equal(first, second)
    assert len(result.member_dev_accuracy) == 2 and seen == [1, 2]


def test_time_budget_stops_training_but_keeps_the_first_members_best_weights():
    cfg = TrainConfig(**{**TINY, "members": 3, "max_minutes": 1e-9})
    result = train_classifier(synthetic(90, 1), synthetic(30, 2), cfg, torch.device("cpu"))
    assert len(result.model.members) == 1 and result.model.cfg.members == 1
    assert len(result.history) == 1  # evaluated once, right after the step that ran out of time


def test_dev_labels_unseen_in_training_are_refused():
    from lstmq.errors import InputError

    dev = SimpleNamespace(texts=["x"], labels=["other"])
    with pytest.raises(InputError, match="unseen labels"):
        train_classifier(synthetic(30, 1), dev, TrainConfig(**TINY), torch.device("cpu"))


def test_device_and_autocast_are_checked_once_at_load():
    from lstmq.errors import ConfigError
    from lstmq.worker.ml.device import resolve_autocast, resolve_device

    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu and resolve_autocast("auto", cpu) is None
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        resolve_autocast("bf16", cpu)
    with pytest.raises(ConfigError, match="autocast must be"):
        resolve_autocast("int8", cpu)
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("autocast", ["fp16", "bf16", "off"])
def test_cuda_autocast_predicts_like_cpu(trained, autocast):
    from lstmq.worker.ml.device import resolve_autocast

    texts = synthetic(60, 6).texts
    cuda = torch.device("cuda")
    on_gpu = Classifier(
        "t", "v", trained.model, trained.tokenizer, trained.labels, 16, cuda, resolve_autocast(autocast, cuda)
    )
    gpu_preds = on_gpu.predict(texts)
    trained.model.cpu()
    cpu_preds = Classifier("t", "v", trained.model, trained.tokenizer, trained.labels, 16, torch.device("cpu")).predict(
        texts
    )
    assert sum(a.label == b.label for a, b in zip(gpu_preds, cpu_preds, strict=True)) >= 58


@pytest.mark.parametrize("dtype", ["int8-embeddings", "int8"])
def test_int8_dtypes_store_smaller_and_predict_identically_after_loading(trained, tmp_path, dtype):
    import copy

    from safetensors.torch import load_file

    texts = synthetic(40, 4).texts
    half = save_artifact(tmp_path / "half", copy.deepcopy(trained.model), trained.tokenizer, trained.labels, 16)
    model = copy.deepcopy(trained.model)
    small = save_artifact(tmp_path / "small", model, trained.tokenizer, trained.labels, 16, dtype=dtype)
    stored = load_file(str(small / "model.safetensors"))
    rows = [k for k in stored if k.endswith("embed.weight") or (dtype == "int8" and stored[k].dim() == 2)]
    assert any(k.endswith("weight_hh_l0") for k in rows) == (dtype == "int8")
    assert rows and all(stored[k].dtype == torch.int8 for k in rows)
    assert all(stored[k + ".row_scale"].dtype == torch.float16 for k in rows)
    floats = [k for k in stored if k not in rows and not k.endswith(".row_scale")]
    assert floats and all(stored[k].dtype == torch.float16 for k in floats)  # biases
    assert (small / "model.safetensors").stat().st_size < (half / "model.safetensors").stat().st_size
    # what was evaluated before saving (rounded in place) is what loads
    before = Classifier("t", "v", model, trained.tokenizer, trained.labels, 16, torch.device("cpu"))
    loaded, tok, config = load_artifact(small)
    after = Classifier("t", "v", loaded, tok, config["labels"], 16, torch.device("cpu"))
    assert config["weights_dtype"] == dtype
    assert [p.probs for p in before.predict(texts)] == [p.probs for p in after.predict(texts)]
    # and it is the same model to within the rounding of its weight rows
    reference = Classifier("t", "v", trained.model, trained.tokenizer, trained.labels, 16, torch.device("cpu"))
    assert [p.label for p in after.predict(texts)] == [p.label for p in reference.predict(texts)]


def test_quantized_rows_round_trip_within_half_a_step_and_keep_zero_rows():
    from lstmq.worker.ml.weights import dequantize_rows, quantize_rows

    weight = torch.randn(50, 8) * torch.linspace(0.01, 3, 50)[:, None]
    weight[0] = 0.0  # the padding row
    q, scale = quantize_rows(weight)
    back = dequantize_rows(q, scale)
    assert torch.equal(back[0], torch.zeros(8))
    assert ((back - weight).abs() <= scale.float()[:, None] / 2 + 1e-6).all()


def test_an_unknown_weights_dtype_is_refused_before_training(tmp_path):
    from lstmq.errors import InputError
    from lstmq.worker.ml.classifier.runs import train_and_save

    with pytest.raises(InputError, match="unknown weights dtype 'int4'"):
        train_and_save(
            "x",
            tmp_path / "missing.jsonl",
            tmp_path / "missing.jsonl",
            tmp_path / "out",
            TrainConfig(**TINY, weights_dtype="int4"),
            "cpu",
        )


def test_balanced_class_weights_make_every_class_weigh_the_same_in_the_loss():
    from lstmq.worker.ml.classifier.train import class_weights

    y = [0] * 90 + [1] * 10
    weights = class_weights(y, 2, "balanced", torch.device("cpu"))
    assert torch.allclose(weights, torch.tensor([100 / 180, 100 / 20]))
    assert weights[0] * 90 == pytest.approx(weights[1] * 10)  # total weight per class is equal
    assert class_weights(y, 2, "none", torch.device("cpu")) is None


def test_balanced_class_weights_change_training_and_an_unknown_kind_is_refused():
    from lstmq.errors import InputError

    train, dev = synthetic(60, 1), synthetic(30, 2)
    train = Labelled(train.texts[:50], train.labels[:50], train.source)  # 17/17/16: not exactly balanced
    cfg = TrainConfig(**{**TINY, "epochs": 1})
    plain = train_classifier(train, dev, cfg, torch.device("cpu"))
    weighted = train_classifier(
        train, dev, TrainConfig(**{**TINY, "epochs": 1, "class_weight": "balanced"}), torch.device("cpu")
    )
    assert not torch.equal(plain.model.members[0].head.weight, weighted.model.members[0].head.weight)
    with pytest.raises(InputError, match="--class-weight must be one of none, balanced, not 'inverse'"):
        TrainConfig(**TINY, class_weight="inverse")


@pytest.mark.parametrize(
    ("steps", "evals", "expected"),
    [(417, 2, {208, 417}), (417, 1, {417}), (10, 3, {3, 7, 10}), (3, 5, {1, 2, 3}), (1, 1, {1})],
)
def test_dev_is_evaluated_evenly_and_once_per_point_of_an_epoch(steps, evals, expected):
    assert eval_steps(steps, evals) == expected
