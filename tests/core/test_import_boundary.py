"""The core, the producer side and the HTTP API never import torch: they run in a slim image and start instantly."""

import importlib.util
import pkgutil
import subprocess
import sys

import pytest

import lstmq
import lstmq.api
import lstmq.producer

NOT_IMPORTABLE = ("lstmq.__main__", "lstmq.migrations")  # runs the CLI; runs only under alembic
MAY_IMPORT_TORCH = ("lstmq.worker", "lstmq.bench")  # inside lstmq in a wheel, beside it in a checkout


def torch_free_modules() -> list[str]:
    """Every module of the core, the producer and the API: found by walking them, so a new one is checked too."""
    packages = (lstmq, lstmq.producer, lstmq.api)
    found = {m.name for pkg in packages for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")}
    return sorted(name for name in found if not name.startswith(NOT_IMPORTABLE + MAY_IMPORT_TORCH))


def test_importing_the_producer_does_not_load_torch():
    code = (
        f"import sys\nfor name in {torch_free_modules()!r}: __import__(name)\n"
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


def test_the_api_client_loads_on_first_use():
    # `import lstmq` runs in every CLI command and worker: `lstmq.Client` must not cost them.
    code = "import sys, lstmq\nprint('lstmq.client' in sys.modules)\nlstmq.Client\nprint('lstmq.client' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", "True"], proc.stderr
