"""The wheel installs one top-level package, ``lstmq``, with every subpackage and data file, and
the commands run from it alone (not from the checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.support.processes import ROOT

pytestmark = pytest.mark.processes  # builds the wheel with pip: left out by make test-fast

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
LEFT_OUT = shutil.ignore_patterns(".git", ".venv", ".lstmq", "build", "dist", "*.egg-info", "__pycache__", "tests")


def checkout_packages() -> set[str]:
    """Every folder of the checkout that is a package, named as it installs (package-dir)."""
    found = set()
    for package, folder in PYPROJECT["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join([package, *relative]))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout (the build writes build/ and egg-info)."""
    source = tmp_path_factory.mktemp("source") / "lstmq"
    shutil.copytree(ROOT, source, ignore=LEFT_OUT)
    out = tmp_path_factory.mktemp("wheel")
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(out),
        str(source),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return next(out.glob("lstmq-*.whl"))


def test_every_package_folder_is_listed_for_the_build():
    assert checkout_packages() == set(PYPROJECT["packages"])


def test_the_wheel_holds_only_lstmq_at_the_top(wheel):
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"lstmq"}


def test_the_wheel_holds_the_templates_migrations_models_and_samples(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        "lstmq/api/console/templates/job.html",
        "lstmq/api/console/static/console.js",
        "lstmq/migrations/env.py",
        "lstmq/migrations/versions/0001_initial_schema.py",
        "lstmq/models/news/model.safetensors",
        "lstmq/samples/news.jsonl",
        "lstmq/worker/heal/reconcile.py",
        "lstmq/bench/pipeline.py",
    }
    assert wanted - names == set()


def test_the_commands_run_from_the_wheel_alone(wheel, tmp_path):
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    code = "import lstmq.cli, lstmq.worker.tasks, lstmq.api.app; print(lstmq.worker.tasks.__file__)"
    where = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(unpacked)), where.stderr
    help_ = subprocess.run(
        [sys.executable, "-m", "lstmq", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert help_.returncode == 0 and "submit" in help_.stdout, help_.stderr
