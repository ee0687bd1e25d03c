"""Fixtures shared by the model tests (imported by name into each test module)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models: a second OpenMP thread only adds spin-waiting on a busy machine (8x slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
