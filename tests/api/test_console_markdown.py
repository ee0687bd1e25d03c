"""lstmq.api.console.markdown: the subset model cards use, and nothing a card could inject."""

from __future__ import annotations

import pytest

from lstmq.api.console.markdown import inline, render


def test_the_blocks_a_model_card_uses():
    card = "# Card `news`\n\n- one\n- **two**\n\n```\na < b\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\ntext\nmore"
    assert render(card) == (
        "<h1>Card <code>news</code></h1>\n<ul><li>one</li><li><strong>two</strong></li></ul>\n"
        "<pre><code>a &lt; b</code></pre>\n"
        "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>\n"
        "<p>text more</p>"
    )


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "**<b>x</b>**",
        "`</code><script>`",
        "| <td onclick=x> |\n|---|\n| <a href=javascript:x> |",
        "[link](javascript:alert(1))",
        "\x000\x00 held",
    ],
)
def test_nothing_in_a_card_becomes_markup(source):
    html = render(source)
    assert "<script" not in html and "<img" not in html and "<a " not in html and "<td " not in html
    assert "<b>" not in html


def test_bold_may_span_code_and_code_keeps_its_asterisks():
    assert inline("**a `b` c** and `**d**`") == "<strong>a <code>b</code> c</strong> and <code>**d**</code>"
    assert inline("an unpaired ` stays") == "an unpaired ` stays"
