"""Distillation: a student classifier learns a teacher's probabilities (and, with 1 - alpha, the labels)."""

from __future__ import annotations

import random

import pytest
import torch

from lstmq.errors import InputError
from lstmq.worker.ml.classifier.config import DistillConfig, TrainConfig
from lstmq.worker.ml.classifier.data import Labelled
from lstmq.worker.ml.classifier.distill import agreement, distill_classifier, distill_loss, teacher_probs
from lstmq.worker.ml.classifier.inference import Classifier
from lstmq.worker.ml.classifier.train import UNLABELLED, hard_targets, train_classifier
from tests.ml.test_training import TINY, synthetic

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def teacher() -> Classifier:
    result = train_classifier(synthetic(300, 1), synthetic(60, 2), TrainConfig(**TINY), CPU)
    return Classifier("teacher", "t1", result.model, result.tokenizer, result.labels, 16, CPU)


def student_agreement(student, teacher: Classifier, held_out: Labelled) -> float:
    clf = Classifier("student", "s1", student.model, student.tokenizer, student.labels, 16, CPU)
    return agreement([p.probs for p in clf.predict(held_out.texts)], teacher_probs(teacher, held_out.texts))


def test_the_student_agrees_with_its_teacher_on_held_out_rows(teacher):
    extra = synthetic(200, 7).texts
    student = distill_classifier(
        synthetic(300, 1), synthetic(60, 2), extra, teacher, TrainConfig(**TINY), DistillConfig(2.0, 0.5), CPU
    )
    assert student_agreement(student, teacher, synthetic(150, 3)) > 0.85  # chance is 1/3
    assert student.calibration["temperature"] > 0 and student.dev_probs


def test_with_alpha_one_the_student_learns_from_the_teacher_alone(teacher):
    """Scrambled gold labels do not matter: only the teacher's probabilities are learnt."""
    train = synthetic(300, 1)
    scrambled = Labelled(train.texts, random.Random(0).sample(train.labels, len(train)), "scrambled")
    student = distill_classifier(
        scrambled, synthetic(60, 2), [], teacher, TrainConfig(**TINY), DistillConfig(2.0, 1.0), CPU
    )
    assert student_agreement(student, teacher, synthetic(150, 3)) > 0.8  # 0.52 with alpha 0


def test_a_teacher_with_other_labels_is_refused(teacher):
    train = synthetic(30, 1)
    other = Labelled(train.texts, ["x" if label == "sport" else label for label in train.labels], "other")
    dev = Labelled(train.texts, other.labels, "dev")
    with pytest.raises(InputError, match="teacher 'teacher' has labels"):
        distill_classifier(other, dev, [], teacher, TrainConfig(**TINY), DistillConfig(), CPU)


@pytest.mark.parametrize(
    ("temperature", "alpha", "message"), [(0.0, 0.5, "temperature must be > 0"), (2.0, 1.5, "alpha")]
)
def test_distillation_settings_are_checked(temperature, alpha, message):
    with pytest.raises(InputError, match=message):
        DistillConfig(temperature, alpha).check()


def test_distill_loss_is_zero_when_the_student_matches_the_teacher_and_scales_with_t_squared():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    for t in (1.0, 2.0, 4.0):
        assert distill_loss(logits, (logits / t).softmax(-1), t).item() == pytest.approx(0.0, abs=1e-6)
    soft = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.2, 0.2]])
    kl = (soft * (soft.log() - logits.log_softmax(-1))).sum(-1).mean()
    assert distill_loss(logits, soft, 1.0).item() == pytest.approx(kl.item(), rel=1e-5)
    assert distill_loss(logits * 3, soft, 3.0).item() == pytest.approx(9 * kl.item(), rel=1e-5)


def test_the_gold_term_counts_only_labelled_rows():
    cfg = TrainConfig(**TINY)
    hard = hard_targets([0, UNLABELLED, 2, UNLABELLED], 3, cfg, CPU)
    logits = torch.randn(4, 3, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(logits[[0, 2]], torch.tensor([0, 2]))
    assert hard(logits, [0, 1, 2, 3]).item() == pytest.approx(expected.item())
    none = hard(logits, [1, 3])
    assert none.item() == 0.0 and none.requires_grad  # a batch of extra texts only: no NaN
