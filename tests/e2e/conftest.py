"""Whole jobs through real processes; those that render or retrain run torch in this process too."""

from tests.support.optional import needing

collect_ignore = needing("torch", "test_render.py", "test_retrain.py")
