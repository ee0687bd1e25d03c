"""Schedule definitions: names, intervals, cron expressions (pure functions, no I/O).

A schedule fires either every N seconds (``30s``, ``15m``, ``6h``, ``1d``) or on a 5-field
crontab (``"0 * * * *"``, UTC). Both become Celery schedule objects, which Celery beat (with
RedBeat) evaluates; nothing here keeps time itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from celery.schedules import crontab
from celery.schedules import schedule as interval_schedule

from lstmq.errors import ScheduleError
from lstmq.modelstore import valid_name

INTERVAL_PATTERN = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_S = 1
MAX_INTERVAL_S = 366 * 86400
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
# A beat message older than its period (at least MIN_MESSAGE_EXPIRY_S, so a loaded host still
# gets to it) is dropped unread: a busy scheduler never works off a backlog of stale firings.
CRON_MESSAGE_EXPIRY_S = 60
MIN_MESSAGE_EXPIRY_S = 10


def check_name(name: str) -> str:
    # The rule model names follow: short, plain, safe in a path, a Redis key or a shell.
    if not valid_name(name):
        raise ScheduleError(
            f"invalid schedule name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def parse_interval(text: str) -> int:
    """``"30s" | "15m" | "6h" | "1d"`` -> seconds."""
    match = INTERVAL_PATTERN.match(text or "")
    if not match:
        raise ScheduleError(f"invalid interval {text!r}: use a number and a unit s, m, h or d (e.g. 30s, 15m, 6h)")
    seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise ScheduleError(f"invalid interval {text!r}: must be between {MIN_INTERVAL_S}s and 366d")
    return seconds


def parse_cron(text: str) -> crontab:
    """A 5-field crontab string (minute hour day-of-month month day-of-week) -> crontab."""
    fields = (text or "").split()
    if len(fields) != len(CRON_FIELDS):
        raise ScheduleError(
            f"invalid cron expression {text!r}: expected 5 fields (minute hour day-of-month month day-of-week)"
        )
    try:
        return crontab(**dict(zip(CRON_FIELDS, fields, strict=True)))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ScheduleError(f"invalid cron expression {text!r}: {exc}") from None


def format_interval(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % UNIT_SECONDS[unit] == 0:
            return f"{seconds // UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Timing:
    """When a schedule fires: exactly one of ``every_s`` and ``cron``."""

    every_s: int | None = None
    cron: str | None = None

    @classmethod
    def parse(cls, every: str | None, cron: str | None) -> Timing:
        if (every is None) == (cron is None):
            raise ScheduleError("give exactly one of --every (e.g. 15m) and --cron (e.g. '0 * * * *')")
        if every is not None:
            return cls(every_s=parse_interval(every))
        parse_cron(cron)
        return cls(cron=" ".join(cron.split()))

    def celery_schedule(self):
        if self.every_s is not None:
            return interval_schedule(run_every=timedelta(seconds=self.every_s))
        return parse_cron(self.cron)

    def message_expiry_s(self) -> int:
        return max(self.every_s, MIN_MESSAGE_EXPIRY_S) if self.every_s is not None else CRON_MESSAGE_EXPIRY_S

    def describe(self) -> str:
        return f"every {format_interval(self.every_s)}" if self.every_s is not None else f"cron {self.cron}"
