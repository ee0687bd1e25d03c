"""The LSTM classifier module: shapes, padding invariance, ensembles."""

from __future__ import annotations

import pytest
import torch

from lstmq.worker.ml.classifier.model import ClassifierConfig, Ensemble, LSTMClassifier


def tiny(pooling: str = "maxmean", members: int = 1, layers: int = 1) -> ClassifierConfig:
    return ClassifierConfig(
        vocab_size=50, num_labels=3, embed_dim=8, hidden_dim=6, num_layers=layers, pooling=pooling, members=members
    )


@pytest.mark.parametrize("pooling", ["max", "maxmean", "attention"])
@pytest.mark.parametrize("layers", [1, 2])
def test_logits_have_shape_batch_by_labels(pooling, layers):
    torch.manual_seed(0)
    model = LSTMClassifier(tiny(pooling, layers=layers)).eval()
    ids = torch.randint(2, 50, (5, 7))
    assert model(ids, torch.tensor([7, 3, 1, 5, 7])).shape == (5, 3)


@pytest.mark.parametrize("pooling", ["max", "maxmean", "attention"])
def test_padding_does_not_change_a_documents_logits(pooling):
    torch.manual_seed(0)
    model = LSTMClassifier(tiny(pooling)).eval()
    doc = torch.tensor([[5, 9, 13]])
    alone = model(doc, torch.tensor([3]))
    padded = torch.tensor([[5, 9, 13, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    together = model(padded, torch.tensor([3, 6]))[:1]
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-6)


def test_ensemble_averages_member_probabilities():
    torch.manual_seed(0)
    ens = Ensemble(tiny(members=3)).eval()
    ids, lengths = torch.randint(2, 50, (4, 5)), torch.tensor([5, 4, 2, 1])
    probs = ens(ids, lengths)
    expected = torch.stack([m(ids, lengths).softmax(-1) for m in ens.members]).mean(0)
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))


def test_config_round_trips_through_dict_and_rejects_unknown_keys():
    cfg = tiny("attention", members=2)
    assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown architecture keys: bogus"):
        ClassifierConfig.from_dict({**cfg.to_dict(), "bogus": 1})
