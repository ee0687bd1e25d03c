"""The classifier on CUDA computes what it computes on the CPU: batches split into several
forward passes (pinned host memory, non-blocking copies) and passes merged across threads
(``lstmq.worker.ml.coalesce``) change nothing but float rounding. Skipped where no GPU exists."""

from __future__ import annotations

import pytest
import torch

from lstmq.worker.ml.classifier.artifact import load_artifact
from lstmq.worker.ml.classifier.inference import Classifier
from tests.support.threads import run_together
from tests.support.tiny_classifier import make_tiny_classifier

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

WORDS = ["a", "good", "bad", "film", "zzz"]  # zzz: not in the tiny tokenizer's vocabulary


def texts(n: int, seed: int) -> list[str]:
    """1 to 30 words: some longer than the model's 16 tokens (truncated), so passes pad."""
    return [" ".join(WORDS[(i * 7 + k * seed) % len(WORDS)] for k in range(i % 30 + 1)) for i in range(n)]


@pytest.fixture(autouse=True)
def no_tf32():
    """cuDNN may round LSTM inputs to TF32 (10-bit mantissa): the claim here is the plumbing
    (order, padding, passes), so the GPU computes in full fp32 like the CPU."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return make_tiny_classifier(tmp_path_factory.mktemp("tiny"))


def load(artifact, device: str) -> Classifier:
    model, tokenizer, _ = load_artifact(artifact)
    return Classifier("tiny", "v1", model, tokenizer, ["neg", "pos"], 16, torch.device(device))


def flat(predictions) -> list[float]:
    return [p for prediction in predictions for p in prediction.probs]


def test_a_batch_of_several_passes_on_cuda_gets_the_cpu_probabilities(artifact):
    gpu, cpu = load(artifact, "cuda"), load(artifact, "cpu")
    batch = texts(2 * gpu.batch_docs + 500, seed=3)
    forward, passes = gpu._forward, []
    gpu._forward = lambda ids: passes.append(len(ids)) or forward(ids)
    on_gpu, on_cpu = gpu.predict(batch), cpu.predict(batch)
    assert len(passes) >= 3 and sum(passes) == len(batch)
    assert [(p.label, p.flags) for p in on_gpu] == [(p.label, p.flags) for p in on_cpu]
    assert flat(on_gpu) == pytest.approx(flat(on_cpu), abs=1e-4)


def test_threads_sharing_a_classifier_on_cuda_get_what_each_would_get_alone(artifact):
    gpu = load(artifact, "cuda")
    batches = [texts(1000 + 37 * i, seed=i + 1) for i in range(8)]  # started at once: passes merge
    alone = [flat(gpu.predict(batch)) for batch in batches]
    together = run_together(lambda batch: flat(gpu.predict(batch)), batches)
    for i, probs in enumerate(alone):  # merged passes pad differently: equal up to float rounding
        assert together[i] == pytest.approx(probs, abs=1e-5)
