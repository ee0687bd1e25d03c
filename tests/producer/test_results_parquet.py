"""`lstmq results JOB --format parquet -o FILE`: a file pyarrow reads back; binary never goes to
stdout, and -o belongs to parquet."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from tests.core.test_parquet import classify_job, streamed
from tests.support.processes import run_lstmq

pytestmark = pytest.mark.processes  # starts lstmq processes: left out by make test-fast


def test_results_as_parquet_are_written_to_the_file_given(migrated_db, tmp_path):
    job_id = classify_job(migrated_db)
    proc = run_lstmq("results", job_id, "--format", "parquet", "-o", str(tmp_path / "r.parquet"))
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert pq.read_table(tmp_path / "r.parquet").to_pylist() == streamed(migrated_db, job_id)


@pytest.mark.parametrize(
    "args, line",
    [
        (["--format", "parquet"], "error: --format parquet writes a file: give -o FILE"),
        (["--format", "parquet", "-o", "-"], "error: --format parquet writes a file: give -o FILE"),
        (
            ["--format", "csv", "-o", "r.csv"],
            "error: -o FILE is for --format parquet; csv goes to stdout (redirect it with >)",
        ),
    ],
)
def test_parquet_without_a_file_or_a_file_for_text_is_one_error_line(migrated_db, args, line):
    proc = run_lstmq("results", classify_job(migrated_db), *args)
    assert (proc.returncode, proc.stderr.decode().splitlines(), proc.stdout) == (2, [line], b"")
