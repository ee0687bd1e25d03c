"""Test modules that need an optional dependency, left out where it is not installed.

The worker extra brings torch and the test extra brings selenium; a producer-only install has
neither. A folder's conftest names its modules that need one (``collect_ignore``), so the modules
themselves import everything at the top."""

from __future__ import annotations

import importlib.util


def needing(module: str, *files: str) -> list[str]:
    """``files`` when ``module`` cannot be imported here, else nothing: a conftest's collect_ignore."""
    return [] if importlib.util.find_spec(module) else list(files)
