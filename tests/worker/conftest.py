"""The worker's batch path and self-healing; the render batches run a (tiny) torch generator."""

from tests.support.optional import needing

collect_ignore = needing("torch", "test_heal_images.py", "test_oom.py", "test_render_batches.py")
