"""A small, safe Markdown-to-HTML for model cards: headings, paragraphs, lists, fenced code,
pipe tables, `code`, **bold**. Every character of the source is escaped first; only the tags
written here are ever emitted, so a card can show text but never inject markup."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape
from typing import NamedTuple

from markupsafe import Markup

HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
LIST_ITEM = re.compile(r"^\s*[-*]\s+(.*)$")
TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")
BOLD = re.compile(r"\*\*(.+?)\*\*")
CODE = re.compile(r"`([^`]+)`")
HOLD = "\x00"  # marks where a code span goes back (removed from the source first)
HELD = re.compile(r"\x00(\d+)\x00")


def render(source: str) -> Markup:
    lines, out, i = source.splitlines(), [], 0
    while i < len(lines):
        kind = next((kind for kind in BLOCKS if kind.starts(lines, i)), None)
        if kind is None:  # a blank line
            i += 1
            continue
        html, i = kind.emit(lines, i)
        out.append(html)
    return Markup("\n".join(out))


class Block(NamedTuple):
    starts: Callable[[list[str], int], bool]
    emit: Callable[[list[str], int], tuple[str, int]]  # (html, the line after the block)


def _until(lines: list[str], start: int, stop) -> int:
    return next((j for j in range(start, len(lines)) if stop(lines[j])), len(lines))


def _fence(lines: list[str], i: int) -> tuple[str, int]:
    end = _until(lines, i + 1, lambda s: s.startswith("```"))
    return f"<pre><code>{escape(chr(10).join(lines[i + 1 : end]))}</code></pre>", end + 1


def _heading(lines: list[str], i: int) -> tuple[str, int]:
    marks, text = HEADING.match(lines[i]).groups()
    return f"<h{len(marks)}>{inline(text)}</h{len(marks)}>", i + 1


def _list(lines: list[str], i: int) -> tuple[str, int]:
    end = _until(lines, i, lambda s: not LIST_ITEM.match(s))
    return "<ul>" + "".join(f"<li>{inline(LIST_ITEM.match(s).group(1))}</li>" for s in lines[i:end]) + "</ul>", end


def _is_table(lines: list[str], i: int) -> bool:
    return lines[i].startswith("|") and i + 1 < len(lines) and bool(TABLE_RULE.match(lines[i + 1]))


def _table_block(lines: list[str], i: int) -> tuple[str, int]:
    end = _until(lines, i + 2, lambda s: not s.startswith("|"))
    return _table(lines[i], lines[i + 2 : end]), end


def _paragraph(lines: list[str], i: int) -> tuple[str, int]:
    end = max(i + 1, _until(lines, i, lambda s: not s.strip() or any(b.starts([s], 0) for b in BLOCKS[:3])))
    return f"<p>{inline(' '.join(lines[i:end]))}</p>", end


def _table(head: str, rows: list[str]) -> str:
    def cells(line: str, tag: str) -> str:
        return "".join(f"<{tag}>{inline(c.strip())}</{tag}>" for c in line.strip().strip("|").split("|"))

    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    return f"<table><thead><tr>{cells(head, 'th')}</tr></thead><tbody>{body}</tbody></table>"


BLOCKS = (
    Block(lambda lines, i: lines[i].startswith("```"), _fence),
    Block(lambda lines, i: bool(HEADING.match(lines[i])), _heading),
    Block(lambda lines, i: bool(LIST_ITEM.match(lines[i])), _list),
    Block(_is_table, _table_block),
    Block(lambda lines, i: bool(lines[i].strip()), _paragraph),  # anything else that is not blank
)


def inline(text: str) -> str:
    """Escaped text with `code` and **bold** (which may span code)."""
    codes: list[str] = []

    def hold(match: re.Match) -> str:
        codes.append(f"<code>{escape(match.group(1))}</code>")
        return f"{HOLD}{len(codes) - 1}{HOLD}"

    marked = CODE.sub(hold, text.replace(HOLD, ""))
    html = BOLD.sub(r"<strong>\1</strong>", escape(marked))
    return HELD.sub(lambda match: codes[int(match.group(1))], html)
