"""Training hyper-parameters (torch-free, so the CLI can build its options without torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from lstmq.errors import InputError

HELP = {
    "tokenizer": "word | bpe",
    "pooling": "max | maxmean | attention",
    "members": "ensemble size: models trained with seeds seed..seed+members-1, probabilities averaged",
    "warmup": "fraction of steps with linear warm-up, then cosine decay",
    "word_dropout": "probability of replacing a training token by [UNK]",
    "patience": "dev evaluations without improvement before stopping",
    "max_minutes": "wall-clock budget: stop then, keeping the best weights of finished work",
    "max_train_rows": "train on a seeded random sample of N rows (quick runs)",
    "class_weight": "none | balanced (loss weighted by inverse class frequency, for rare classes such as spam)",
    "calibrate": "fit one temperature on dev (minimum NLL) so that scores are calibrated probabilities",
    "weights_dtype": "float16 | float32 | int8-embeddings | int8 (stored precision: int8 rows for the embeddings, or for every weight matrix)",
}


@dataclass
class TrainConfig:
    tokenizer: str = "word"  # word | bpe
    vocab_size: int = 20000
    min_frequency: int = 2
    max_tokens: int = 128
    embed_dim: int = 128
    hidden_dim: int = 192
    num_layers: int = 1
    dropout: float = 0.3
    pooling: str = "maxmean"
    members: int = 1
    epochs: int = 8
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.05  # fraction of steps with linear warm-up, then cosine decay
    label_smoothing: float = 0.0
    class_weight: str = "none"  # none | balanced
    word_dropout: float = 0.0  # probability of replacing a training token by [UNK]
    clip: float = 1.0
    patience: int = 2  # evaluations without dev improvement before stopping
    evals_per_epoch: int = 1
    seed: int = 13
    max_train_rows: int | None = None
    max_minutes: float | None = None  # wall-clock budget; see train.train_classifier
    weights_dtype: str = "float16"  # stored precision; dev metrics are measured after rounding to it
    calibrate: bool = True  # fit a temperature on dev (calibration.py)

    def to_dict(self) -> dict:
        return asdict(self)


CLASS_WEIGHTS = ("none", "balanced")


@dataclass(frozen=True)
class DistillConfig:
    """What ``train distill`` adds to a TrainConfig (see ``distill.py``)."""

    temperature: float = 2.0  # softens the teacher's and the student's distributions in the KL term
    alpha: float = 0.5  # the teacher's share of the loss; the gold labels get 1 - alpha

    def check(self) -> None:
        if not self.temperature > 0:
            raise InputError(f"distillation temperature must be > 0, not {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise InputError(f"alpha must be between 0 and 1, not {self.alpha}")


def train_fields() -> list:
    return list(fields(TrainConfig))
