"""Training hyper-parameters (torch-free, so the CLI can build its options without torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from lstmq.errors import InputError
from lstmq.worker.ml.tokenizer import KINDS as TOKENIZERS

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

    def __post_init__(self) -> None:
        """Refuse what training would only fail on later, with a traceback or, worse, silently."""
        if problem := config_problem(self):
            raise InputError(problem)

    def to_dict(self) -> dict:
        return asdict(self)


CLASS_WEIGHTS = ("none", "balanced")
POOLINGS = ("max", "maxmean", "attention")
# The smallest vocabulary each tokenizer can build: [PAD], [UNK] and a word; or the 256 bytes too.
MIN_VOCAB = {"word": 3, "bpe": 259}


def config_problem(cfg: TrainConfig) -> str | None:
    """What is wrong with ``cfg`` (one line naming the option), or None."""
    choices = {"tokenizer": TOKENIZERS, "pooling": POOLINGS, "class_weight": CLASS_WEIGHTS}
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            return f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, not {getattr(cfg, name)!r}"
    at_least_1 = ("min_frequency", "max_tokens", "embed_dim", "hidden_dim", "num_layers", "members", "epochs")
    at_least_1 += ("batch_size", "patience", "evals_per_epoch", "max_train_rows")
    for name in at_least_1:
        value = getattr(cfg, name)
        if value is not None and value < 1:
            return f"--{name.replace('_', '-')} must be at least 1, not {value}"
    for name in ("dropout", "warmup", "label_smoothing", "word_dropout"):  # probabilities or fractions
        if not 0 <= getattr(cfg, name) < 1:
            return f"--{name.replace('_', '-')} must be in [0, 1), not {getattr(cfg, name)}"
    for name in ("lr", "clip", "max_minutes"):
        value = getattr(cfg, name)
        if value is not None and not value > 0:
            return f"--{name.replace('_', '-')} must be greater than 0, not {value}"
    if cfg.weight_decay < 0:
        return f"--weight-decay must be at least 0, not {cfg.weight_decay}"
    if cfg.vocab_size < MIN_VOCAB[cfg.tokenizer]:
        return f"--vocab-size must be at least {MIN_VOCAB[cfg.tokenizer]} for the {cfg.tokenizer} tokenizer, not {cfg.vocab_size}"
    return None


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
