"""Input files the tests feed to lstmq: JSON Lines corpora."""

from __future__ import annotations

import json
from pathlib import Path

from lstmq.settings import SAMPLES_DIR


def corpus(path: Path, n: int, bad_lines: tuple[str, ...] = ()) -> Path:
    """``n`` news-like JSONL records made from the shipped samples, then ``bad_lines``."""
    texts = [json.loads(line)["text"] for line in (SAMPLES_DIR / "news.jsonl").read_text().splitlines()]
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps({"id": f"doc-{i}", "text": f"{texts[i % len(texts)]} Update {i}."}) + "\n")
        out.writelines(line + "\n" for line in bad_lines)
    return path


def write(path: Path, *texts: str, mode: str = "a") -> None:
    """Append (or with ``mode="w"`` write) one ``{"text": ...}`` line per text."""
    with path.open(mode) as fh:
        fh.writelines(json.dumps({"text": t}) + "\n" for t in texts)
