"""The HTTP API and the console; the browser test drives Chromium with selenium, beside a worker
that runs the shipped models."""

from tests.support.optional import needing

collect_ignore = needing("torch", "test_console_browser.py") + needing("selenium", "test_console_browser.py")
