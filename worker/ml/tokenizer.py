"""Tokenizers trained from the training texts with HF ``tokenizers``.

Two kinds, chosen per model (measured on dev, see the model cards):

- ``word``: lower-cased words and punctuation (BERT pre-tokenizer), rare words -> ``[UNK]``.
- ``bpe``: byte-level BPE over the same normalisation; never produces ``[UNK]``.

Id 0 is always ``[PAD]`` and id 1 ``[UNK]``, so padding and unknown-token checks need no lookup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1
KINDS = ("word", "bpe")
# Characters kept before tokenizing: a bound on work for 1 MB texts. Far above what any
# model reads (max_tokens * this is never reached by real words), so cutting here is only
# ever a truncation the caller flags.
CHARS_PER_TOKEN_BOUND = 32


def _normalizer() -> normalizers.Normalizer:
    return normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])


def train_tokenizer(
    texts: Iterable[str], kind: str = "word", vocab_size: int = 20000, min_frequency: int = 2
) -> Tokenizer:
    """Learn a vocabulary from ``texts``; special tokens get ids 0 and 1."""
    if kind == "word":
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[PAD, UNK], show_progress=False
        )
    elif kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=[PAD, UNK],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    else:
        raise ValueError(f"tokenizer kind must be one of {KINDS}, not {kind!r}")
    tok.normalizer = _normalizer()
    tok.train_from_iterator(texts, trainer=trainer)
    assert tok.token_to_id(PAD) == PAD_ID and tok.token_to_id(UNK) == UNK_ID
    return tok


def prune_vocab(tok: Tokenizer, size: int) -> Tokenizer:
    """A word-level tokenizer cut to its ``size`` most frequent words (the rest become [UNK]).

    The trainer numbers words by descending training frequency, so the cut keeps ids
    ``0..size-1`` unchanged: it is the vocabulary ``vocab_size=size`` would have learned.
    """
    data = json.loads(tok.to_str())
    if data["model"]["type"] != "WordLevel":
        raise ValueError("only a word-level vocabulary can be cut (BPE merges refer to every piece)")
    if size < 3:
        raise ValueError(f"a vocabulary needs more than the 2 special tokens, not {size}")
    data["model"]["vocab"] = {word: i for word, i in data["model"]["vocab"].items() if i < size}
    return Tokenizer.from_str(json.dumps(data))


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    truncated: bool

    @property
    def all_unknown(self) -> bool:
        return bool(self.ids) and self.ids.count(UNK_ID) == len(self.ids)  # counted in C


def encode_batch(tok: Tokenizer, texts: Sequence[str], max_tokens: int) -> list[Encoded]:
    """Token ids per text, cut to ``max_tokens``; ``truncated`` says whether anything was cut."""
    char_cap = max_tokens * CHARS_PER_TOKEN_BOUND
    clipped = [t[:char_cap] for t in texts]
    out = []
    # The _fast variant skips character offsets, which nothing here reads: ~20% of tokenizing
    # (news: 49 -> 39 us per text on one thread), and tokenizing is most of a small model's cost.
    encodings = tok.encode_batch_fast(clipped, add_special_tokens=False)
    for text, clip, enc in zip(texts, clipped, encodings, strict=True):
        ids = enc.ids
        out.append(Encoded(ids[:max_tokens], len(ids) > max_tokens or len(clip) < len(text)))
    return out
