"""Pure statistics of label quality: no database, no torch.

- ``wilson``: the 95 % Wilson score interval of a share (agreement of reviewers with the model).
- ``sample_key``: a keyed hash that orders a job's documents into one reproducible random sample;
  any prefix of that order is a uniform sample, so asking for more extends the same sample.
- ``histogram`` / ``mix`` / ``psi``: fixed-bin score histograms, label mixes, and the population
  stability index between two distributions (drift).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping

Z95 = 1.959963984540054  # the two-sided 95 % normal quantile
SCORE_BINS = 10  # fixed bins over [0, 1] for score histograms
PSI_EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite
DEFAULT_PSI_THRESHOLD = 0.2  # the usual "significant shift" line for PSI


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes / trials``; None when there are no trials."""
    if trials <= 0:
        return None
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def sample_key(seed: str, document_id: int) -> str:
    """The rank of a document in its job's random sample: sha256 keyed by the job's seed."""
    return hashlib.sha256(f"{seed}:{document_id}".encode()).hexdigest()


def histogram(scores: Iterable[float], bins: int = SCORE_BINS) -> list[int]:
    """Counts of scores in ``bins`` equal bins over [0, 1] (1.0 falls in the last)."""
    counts = [0] * bins
    for score in scores:
        counts[min(bins - 1, max(0, int(score * bins)))] += 1
    return counts


def shares(counts: Mapping[str, int] | list[int]) -> list[float] | dict[str, float]:
    """Counts as shares of their total (all zero when the total is zero)."""
    values = counts.values() if isinstance(counts, Mapping) else counts
    total = sum(values) or 1
    if isinstance(counts, Mapping):
        return {key: count / total for key, count in counts.items()}
    return [count / total for count in counts]


def psi(reference: Mapping[str, int] | list[int], current: Mapping[str, int] | list[int]) -> float:
    """Population stability index, sum over bins of (c - r) * ln(c / r), on shares; a bin empty
    on one side counts as ``PSI_EPSILON``. Lists are aligned bins; mappings are matched by key."""
    if isinstance(reference, Mapping) or isinstance(current, Mapping):
        keys = sorted(set(reference) | set(current))
        reference = [reference.get(key, 0) for key in keys]
        current = [current.get(key, 0) for key in keys]
    if len(reference) != len(current):
        raise ValueError("psi: the two histograms need the same bins")
    total = 0.0
    for r, c in zip(shares(reference), shares(current), strict=True):
        r, c = max(r, PSI_EPSILON), max(c, PSI_EPSILON)
        total += (c - r) * math.log(c / r)
    return total
