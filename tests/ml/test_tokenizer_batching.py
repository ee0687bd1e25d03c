"""Tokenizers and the pure batching functions."""

from __future__ import annotations

import random

import pytest

from lstmq.worker.ml.batching import pad, plan_batches, scatter, shuffled_buckets
from lstmq.worker.ml.tokenizer import PAD_ID, UNK_ID, encode_batch, prune_vocab, train_tokenizer

CORPUS = [
    "the cat sat on the mat .",
    "a dog ate the homework !",
    "the market rose 3% today",
    "stocks fell , the dog barked",
] * 5


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_special_tokens_have_fixed_ids(kind):
    tok = train_tokenizer(CORPUS, kind, vocab_size=300, min_frequency=1)
    assert tok.token_to_id("[PAD]") == PAD_ID and tok.token_to_id("[UNK]") == UNK_ID


def test_word_tokenizer_round_trips_known_text():
    tok = train_tokenizer(CORPUS, "word", min_frequency=1)
    text = "The Dog sat on the mat ."
    ids = tok.encode(text, add_special_tokens=False).ids
    assert UNK_ID not in ids
    assert tok.decode(ids) == text.lower()


def test_bpe_tokenizer_round_trips_unseen_text():
    tok = train_tokenizer(CORPUS, "bpe", vocab_size=400, min_frequency=1)
    text = "Zebras ate 42 mats, naïvely."
    ids = tok.encode(text, add_special_tokens=False).ids
    assert UNK_ID not in ids
    assert tok.decode(ids).strip() == text.lower()


def test_encode_batch_truncates_and_flags():
    tok = train_tokenizer(CORPUS, "word", min_frequency=1)
    short, long_, megabyte = encode_batch(tok, ["the cat", "the cat " * 50, "dog " * 250_000], max_tokens=8)
    assert short.ids == tok.encode("the cat", add_special_tokens=False).ids and not short.truncated
    assert len(long_.ids) == 8 and long_.truncated
    assert len(megabyte.ids) == 8 and megabyte.truncated


def test_unknown_words_map_to_unk():
    tok = train_tokenizer(CORPUS, "word", min_frequency=1)
    (enc,) = encode_batch(tok, ["xylophone quetzal"], max_tokens=8)
    assert enc.ids == [UNK_ID, UNK_ID] and enc.all_unknown


def test_plan_batches_covers_every_index_once_in_length_order():
    lengths = [9, 2, 30, 3, 8, 8, 1]
    batches = plan_batches(lengths, max_docs=2)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)
    assert all(len(b) <= 2 for b in batches)


def test_plan_batches_bounds_docs_times_length():
    lengths = [10] * 5 + [100] * 5
    batches = plan_batches(lengths, max_docs=64, max_cells=200)
    assert all(len(b) * max(lengths[i] for i in b) <= 200 for b in batches)


def test_scatter_restores_input_order():
    lengths = [5, 1, 7, 3, 2]
    batches = plan_batches(lengths, max_docs=2)
    results = [[f"doc{i}" for i in b] for b in batches]
    assert scatter(batches, results, len(lengths)) == [f"doc{i}" for i in range(5)]


def test_pad_right_pads_and_never_returns_zero_width():
    assert pad([[1, 2, 3], [4]]) == [[1, 2, 3], [4, 0, 0]]
    assert pad([[]]) == [[0]]


def test_shuffled_buckets_is_seeded_and_complete():
    lengths = [random.Random(1).randint(1, 50) for _ in range(1000)]
    a = shuffled_buckets(lengths, 32, random.Random(7))
    b = shuffled_buckets(lengths, 32, random.Random(7))
    assert a == b
    assert sorted(i for batch in a for i in batch) == list(range(1000))


def test_cutting_a_word_vocabulary_gives_what_training_with_that_size_learns():
    full = train_tokenizer(CORPUS, "word", vocab_size=300, min_frequency=1)
    cut = prune_vocab(full, 8)
    assert cut.get_vocab() == train_tokenizer(CORPUS, "word", vocab_size=8, min_frequency=1).get_vocab()
    assert cut.get_vocab() == {w: i for w, i in full.get_vocab().items() if i < 8}
    assert full.token_to_id("homework") >= 8  # a rare word: known before the cut, [UNK] after it
    assert cut.encode("the homework", add_special_tokens=False).ids == [full.token_to_id("the"), UNK_ID]


def test_only_a_word_vocabulary_with_more_than_the_special_tokens_can_be_cut():
    with pytest.raises(ValueError, match="only a word-level vocabulary"):
        prune_vocab(train_tokenizer(CORPUS, "bpe", vocab_size=300, min_frequency=1), 50)
    with pytest.raises(ValueError, match="more than the 2 special tokens"):
        prune_vocab(train_tokenizer(CORPUS, "word", min_frequency=1), 2)
