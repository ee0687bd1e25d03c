"""A small, safe Markdown-to-HTML for model cards: headings, paragraphs, lists, fenced code,
pipe tables, `code`, **bold**. Every character of the source is escaped first; only the tags
written here are ever emitted, so a card can show text but never inject markup."""

from __future__ import annotations

import re
from html import escape

from markupsafe import Markup

HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
LIST_ITEM = re.compile(r"^\s*[-*]\s+(.*)$")
TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")
BOLD = re.compile(r"\*\*(.+?)\*\*")
CODE = re.compile(r"`([^`]+)`")
HOLD = "\x00"  # marks where a code span goes back (removed from the source first)
HELD = re.compile(r"\x00(\d+)\x00")


def render(source: str) -> Markup:
    lines, out = source.splitlines(), []
    i = 0
    while i < len(lines):
        i = _block(lines, i, out)
    return Markup("\n".join(out))


def _block(lines: list[str], i: int, out: list[str]) -> int:
    """Render the block starting at line ``i``; returns the line after it."""
    line = lines[i]
    if line.startswith("```"):
        end = _until(lines, i + 1, lambda s: s.startswith("```"))
        out.append(f"<pre><code>{escape(chr(10).join(lines[i + 1 : end]))}</code></pre>")
        return end + 1
    if heading := HEADING.match(line):
        level = len(heading.group(1))
        out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        return i + 1
    if LIST_ITEM.match(line):
        end = _until(lines, i, lambda s: not LIST_ITEM.match(s))
        out.append("<ul>" + "".join(f"<li>{inline(LIST_ITEM.match(s).group(1))}</li>" for s in lines[i:end]) + "</ul>")
        return end
    if line.startswith("|") and i + 1 < len(lines) and TABLE_RULE.match(lines[i + 1]):
        end = _until(lines, i + 2, lambda s: not s.startswith("|"))
        out.append(_table(lines[i], lines[i + 2 : end]))
        return end
    if not line.strip():
        return i + 1
    end = _until(lines, i, lambda s: not s.strip() or s.startswith(("```", "#", "|")) or bool(LIST_ITEM.match(s)))
    out.append(f"<p>{inline(' '.join(lines[i : max(end, i + 1)]))}</p>")
    return max(end, i + 1)


def _until(lines: list[str], start: int, stop) -> int:
    return next((j for j in range(start, len(lines)) if stop(lines[j])), len(lines))


def _table(head: str, rows: list[str]) -> str:
    def cells(line: str, tag: str) -> str:
        return "".join(f"<{tag}>{inline(c.strip())}</{tag}>" for c in line.strip().strip("|").split("|"))

    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    return f"<table><thead><tr>{cells(head, 'th')}</tr></thead><tbody>{body}</tbody></table>"


def inline(text: str) -> str:
    """Escaped text with `code` and **bold** (which may span code)."""
    codes: list[str] = []

    def hold(match: re.Match) -> str:
        codes.append(f"<code>{escape(match.group(1))}</code>")
        return f"{HOLD}{len(codes) - 1}{HOLD}"

    marked = CODE.sub(hold, text.replace(HOLD, ""))
    html = BOLD.sub(r"<strong>\1</strong>", escape(marked))
    return HELD.sub(lambda match: codes[int(match.group(1))], html)
