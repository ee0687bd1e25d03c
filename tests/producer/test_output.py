"""How producer commands word their one-line reports."""

from __future__ import annotations

import pytest

from lstmq.producer.output import submitted_line


@pytest.mark.parametrize(
    "total, batches, rejected, said",
    [
        (1, 1, 0, "job j: 1 document queued in 1 batch, 0 rejected"),
        (2, 1, 1, "job j: 2 documents queued in 1 batch, 1 rejected"),
        (1_000_000, 3_907, 12_345, "job j: 1,000,000 documents queued in 3,907 batches, 12,345 rejected"),
    ],
)
def test_a_submit_report_counts_in_words_and_digits_people_read(total, batches, rejected, said):
    assert submitted_line("j", total, batches, rejected) == said
