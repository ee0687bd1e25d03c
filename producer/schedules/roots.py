"""``LSTMQ_CORPUS_ROOTS``: the folders scheduled corpora may be read from.

Schedules live in the database, so whoever can write a schedule row could point the
scheduler at any file its host can read; with roots set, globs outside them are refused at
``add`` and files resolving outside them (through symlinks, say) are skipped at run time.
"""

from __future__ import annotations

import glob
import os

from lstmq.errors import ScheduleError
from lstmq.settings import get_settings


def corpus_roots() -> list[str] | None:
    """Resolved root folders, or None when unrestricted."""
    value = get_settings().corpus_roots
    if value is None or not value.strip():
        return None
    return [os.path.realpath(os.path.expanduser(part)) for part in value.split(os.pathsep) if part.strip()]


def within(path: str, roots: list[str] | None) -> bool:
    if roots is None:
        return True
    real = os.path.realpath(path)
    return any(os.path.commonpath([real, root]) == root for root in roots)


def literal_prefix(pattern: str) -> str:
    """The folder a glob starts from: its leading path components without wildcards."""
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or os.sep


def check_glob(pattern: str, files: list[str]) -> None:
    """Refuse a glob, or a matched file, outside the roots (one line)."""
    roots = corpus_roots()
    outside = [p for p in [literal_prefix(pattern), *files] if not within(p, roots)]
    if outside:
        raise ScheduleError(
            f"--path {pattern!r} reaches {outside[0]}, outside LSTMQ_CORPUS_ROOTS ({os.pathsep.join(roots)})"
        )
