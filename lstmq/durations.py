"""Durations as people type them: ``30d``, ``12h``, ``90m`` (``lstmq prune --older-than``,
``LSTMQ_RETAIN``). One pure function; every bad input is one line naming the forms it takes."""

from __future__ import annotations

import re
from datetime import timedelta

from lstmq.errors import InputError

UNIT_S = {"d": 86400, "h": 3600, "m": 60}
_DURATION = re.compile(r"^([0-9]{1,6})([dhm])$")
FORMS = "a whole number of days, hours or minutes, e.g. 30d, 12h or 90m"


def parse_duration(text: str, name: str = "duration") -> timedelta:
    """``"30d"`` -> 30 days. ``name`` is what the error calls it (an option or a setting)."""
    found = _DURATION.match(text.strip().lower()) if isinstance(text, str) else None
    if found is None:
        raise InputError(f"{name} {text!r} is not a duration: give {FORMS}")
    amount = int(found.group(1))
    if amount == 0:
        raise InputError(f"{name} {text!r} is zero: give {FORMS}")
    return timedelta(seconds=amount * UNIT_S[found.group(2)])
