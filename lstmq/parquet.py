"""Results as Parquet: the CSV's columns, typed, written a row group at a time in constant memory.

``lstmq results JOB --format parquet -o FILE`` and ``GET .../results?format=parquet`` both feed
``write_parquet`` the rows ``lstmq.db.queries.result_rows`` streams; at most one row group
(``ROW_GROUP_ROWS`` rows) is held at once. pyarrow is an optional extra, ``lstmq[parquet]``:
without it, ``NotInstalled`` says how to get it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from lstmq.db.queries import RENDER_COLUMNS, RESULT_COLUMNS
from lstmq.errors import NotInstalled

ROW_GROUP_ROWS = 50_000
FLOAT_COLUMNS = {"score"}  # float64, null where a document has no result; every other column is a string
INSTALL_HINT = "pip install 'lstmq[parquet]'"


def pyarrow() -> Any:
    """The pyarrow module, or one line saying how to install it."""
    try:
        # Here, not at the top: pyarrow is an optional extra and costs ~100 ms to import.
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401  (the pa.parquet submodule)
    except ImportError:
        raise NotInstalled(f"Parquet needs pyarrow: {INSTALL_HINT}") from None
    return pa


def columns_of(task: str) -> tuple[str, ...]:
    return RENDER_COLUMNS if task == "render" else RESULT_COLUMNS


def schema(task: str) -> Any:
    pa = pyarrow()
    return pa.schema([(name, pa.float64() if name in FLOAT_COLUMNS else pa.string()) for name in columns_of(task)])


def write_parquet(rows: Iterable[dict], task: str, sink: Any, row_group_rows: int = ROW_GROUP_ROWS) -> int:
    """Write ``rows`` (result dicts) to ``sink`` (a path or a binary file); the number written."""
    pa = pyarrow()
    typed = schema(task)
    names = columns_of(task)
    written = 0
    iterator = iter(rows)
    with pa.parquet.ParquetWriter(sink, typed, compression="zstd") as writer:
        while True:
            columns: dict[str, list] = {name: [] for name in names}  # the row group, column by column
            for row in islice(iterator, row_group_rows):
                for name in names:
                    columns[name].append(row.get(name))
            if not (group := len(columns[names[0]])):
                break
            writer.write_batch(pa.RecordBatch.from_pydict(columns, schema=typed), row_group_size=row_group_rows)
            written += group
    return written


def write_parquet_file(rows: Iterable[dict], task: str, path: Path) -> int:
    """As ``write_parquet``, to ``path`` through a temporary name beside it, so a failed or
    interrupted export never leaves half a file under the name asked for."""
    pyarrow()  # fail before creating anything
    partial = path.with_name(f".{path.name}.partial")
    try:
        written = write_parquet(rows, task, str(partial))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return written
