"""Model code: every module here imports torch."""

from tests.support.optional import needing

collect_ignore_glob = needing("torch", "test_*.py")
