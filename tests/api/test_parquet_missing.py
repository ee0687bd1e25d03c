"""A server without the parquet extra answers format=parquet with a 501 problem naming it."""

from __future__ import annotations

import sys

import pytest

from lstmq.api import results
from lstmq.api.problems import status_of
from lstmq.errors import NotInstalled


def test_parquet_without_pyarrow_is_a_501_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails
    with pytest.raises(NotInstalled, match=r"pip install 'lstmq\[parquet\]'") as refused:
        results.results("job", engine=None, format="parquet")
    assert status_of(refused.value) == 501
