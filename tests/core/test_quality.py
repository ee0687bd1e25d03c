"""The pure statistics of label quality: Wilson intervals, sample keys, histograms and PSI."""

from __future__ import annotations

import math

import pytest

from lstmq.quality import histogram, psi, sample_key, wilson


@pytest.mark.parametrize(
    "successes, trials, low, high",
    [(8, 10, 0.4902, 0.9433), (0, 10, 0.0, 0.2775), (50, 100, 0.4038, 0.5962), (10, 10, 0.7225, 1.0)],
)
def test_wilson_interval_matches_published_values(successes, trials, low, high):
    assert wilson(successes, trials) == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_of_no_trials_is_none():
    assert wilson(0, 0) is None


def test_sample_key_depends_on_seed_and_document_only():
    assert sample_key("s", 1) == sample_key("s", 1)
    assert len({sample_key("s", 1), sample_key("s", 2), sample_key("t", 1)}) == 3


def test_histogram_has_fixed_bins_with_one_in_the_last():
    assert histogram([0.0, 0.05, 0.5, 0.99, 1.0], bins=10) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]


def test_psi_of_identical_distributions_is_zero():
    assert psi([10, 30, 60], [20, 60, 120]) == pytest.approx(0.0)


def test_psi_of_a_known_shift():
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(expected)


def test_psi_matches_label_mixes_by_name_and_stays_finite_for_a_new_label():
    value = psi({"World": 90, "Sports": 10}, {"Sports": 80, "World": 10, "Business": 10})
    assert value > 2 and math.isfinite(value)
