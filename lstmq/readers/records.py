"""What readers yield: a good record or a rejected one, and the checks every format shares.

Readers never raise for one bad record: they yield ``Rejected`` (printed as ``FILE:LINE:
reason``) and go on, so a submission can count it and ``--strict`` can refuse the whole input.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_EXTERNAL_ID_CHARS = 512  # documents.external_id is VARCHAR(512)
# A document is what a model reads (it keeps the first few hundred tokens): 1 MiB is a long book
# chapter. The cap keeps one record from filling a message, a worker's memory or a row.
MAX_TEXT_BYTES = 1 << 20
STDIN_NAME = "<stdin>"


@dataclass(frozen=True)
class Fields:
    """Where a record keeps its text and its external id (JSON key or CSV column)."""

    text: str = "text"
    id: str = "id"


@dataclass(frozen=True, slots=True)
class Record:
    """One accepted input record. ``external_id`` None means "use the record number"."""

    text: str
    external_id: str | None = None
    source: str = ""
    line_no: int = 0  # 1-based line (or row) where the record starts
    record_no: int = 0  # 0-based record number within its source


@dataclass(frozen=True, slots=True)
class Rejected:
    """One input record that cannot be used, and why. ``external_id`` is its id when that id
    was usable, so an output with one answer per record (``predict``) can name it."""

    source: str
    line_no: int
    reason: str
    external_id: str | None = None

    def __str__(self) -> str:
        return f"{self.source}:{self.line_no}: {self.reason}"


def text_problem(text: object, field: str) -> str | None:
    """Why ``text`` cannot be a document's text, or None when it can."""
    if text is None:
        return f"missing text field '{field}'"
    if not isinstance(text, str):
        return f"text field '{field}' is not a string"
    if not text.strip():
        return f"empty text field '{field}'"
    return storable_problem(text, "text") or size_problem(text)


def size_problem(text: str) -> str | None:
    """Why ``text`` is too long to be a document, or None (UTF-8 bytes; ``text`` is storable)."""
    # Most texts are far below the cap in characters alone (at most 4 bytes each): no encoding.
    if len(text) <= MAX_TEXT_BYTES // 4 or (size := len(text.encode("utf-8"))) <= MAX_TEXT_BYTES:
        return None
    return f"text of {size:,} bytes, longer than the {MAX_TEXT_BYTES:,} a document may have"


def external_id_of(value: object, field: str) -> tuple[str | None, str | None]:
    """(external id or None when absent, problem or None). Strings and integers only."""
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None, f"id field '{field}' must be a string or an integer"
    ext = str(value)
    if not ext:
        return None, f"empty id field '{field}'"
    if len(ext) > MAX_EXTERNAL_ID_CHARS:
        return None, f"id longer than {MAX_EXTERNAL_ID_CHARS} characters"
    return ext, storable_problem(ext, "id")


def storable_problem(value: str, what: str) -> str | None:
    """Why ``value`` cannot be stored as text (in PostgreSQL, in a JSON file), or None."""
    # Readers decode with surrogateescape, so undecodable bytes surface here as lone
    # surrogates; PostgreSQL text can hold neither those nor NUL.
    if "\x00" in value:
        return f"{what} contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{what} is not valid UTF-8"
    return None
