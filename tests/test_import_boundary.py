"""The producer side never imports torch: it runs in a slim image and starts instantly."""

import importlib.util
import subprocess
import sys

import pytest

PRODUCER_MODULES = [
    "producer.cli",
    "producer.submit",
    "producer.sending",
    "lstmq.readers.sources",
    "producer.output",
    "lstmq.db.queries",
    "lstmq.modelstore",
    "lstmq.cli",
]


def test_importing_the_producer_does_not_load_torch():
    code = (
        f"import sys\nfor name in {PRODUCER_MODULES!r}: __import__(name)\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed here")
def test_the_check_would_see_torch_if_it_were_imported():
    # Guards the test above against passing vacuously (e.g. torch not installed at all).
    proc = subprocess.run(
        [sys.executable, "-c", "import torch, sys; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.strip() == "True", proc.stderr
