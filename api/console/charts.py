"""Bar geometry for the inline SVG charts of a job page: drawn by the server, so a page needs
no script and no library to show them (the template writes the ``<rect>`` elements)."""

from __future__ import annotations

from dataclasses import dataclass

CHART_WIDTH = 480
LABEL_GUTTER = 120  # px left of the label bars for their names
ROW_HEIGHT = 24
HIST_HEIGHT = 160
AXIS_HEIGHT = 20  # px under the histogram for the bin edges
TOP_MARGIN = 16  # px above the histogram for the count over its tallest bar


@dataclass(frozen=True)
class Bar:
    name: str
    count: int
    x: float
    y: float
    width: float
    height: float


def label_bars(counts: list[tuple[str, int]]) -> list[Bar]:
    """One horizontal bar per label, scaled to the largest count."""
    top = max((n for _, n in counts), default=0) or 1
    room = CHART_WIDTH - LABEL_GUTTER - 60  # leave space for the count after the bar
    return [
        Bar(name, n, LABEL_GUTTER, i * ROW_HEIGHT + 2, room * n / top, ROW_HEIGHT - 6)
        for i, (name, n) in enumerate(counts)
    ]


def histogram_bars(bins: list[int]) -> list[Bar]:
    """One vertical bar per score bin, named by its lower edge."""
    top = max(bins, default=0) or 1
    width = CHART_WIDTH / max(len(bins), 1)
    return [
        Bar(
            f"{i / len(bins):.1f}",
            n,
            i * width + 1,
            HIST_HEIGHT - HIST_HEIGHT * n / top,
            width - 2,
            HIST_HEIGHT * n / top,
        )
        for i, n in enumerate(bins)
    ]
