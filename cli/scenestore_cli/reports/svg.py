"""Horizontal bar charts as inline SVG: the one chart type both reports need, in about sixty lines.

A vendored charting library would add hundreds of kilobytes of JavaScript to every report and a licence to
track, for bars; SVG drawn here is plain markup that prints, scales and needs no script at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

WIDTH: Final = 760
LABEL_WIDTH: Final = 240
VALUE_WIDTH: Final = 150
ROW_HEIGHT: Final = 26
BAR_HEIGHT: Final = 18
PLOT_WIDTH: Final = WIDTH - LABEL_WIDTH - VALUE_WIDTH
PALETTE: Final = ("#2f6db5", "#3a9a6b", "#c47f17", "#9b4dca", "#c2410c", "#0e7490")
REST_COLOUR: Final = "#8a8f98"


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: what it is, the figure it draws, and (where known) how many objects that figure covers."""

    label: str
    value: int
    objects: int | None = None
    #: The sum of the entries left out of a top-N chart.
    rest: bool = False


def top_with_rest(bars: Sequence[Bar], top: int, noun: str) -> list[Bar]:
    """The ``top`` largest bars (largest first, ties by label) and, if any are left, one bar summing them."""
    ranked = sorted(bars, key=lambda bar: (-bar.value, bar.label))
    kept, left = ranked[:top], ranked[top:]
    if not left:
        return kept
    objects = None if any(bar.objects is None for bar in left) else sum(bar.objects or 0 for bar in left)
    label = f"{len(left)} other {noun}{'' if len(left) == 1 else 's'}"
    return [*kept, Bar(label, sum(bar.value for bar in left), objects, rest=True)]


def bar_chart(chart_id: str, bars: Sequence[Bar], describe: Callable[[Bar], str]) -> str:
    """An SVG of one bar per entry, widths proportional to the largest value; ``describe`` writes the figure."""
    largest = max((bar.value for bar in bars), default=0)
    height = max(len(bars), 1) * ROW_HEIGHT + 4
    rows = []
    for index, bar in enumerate(bars):
        y = index * ROW_HEIGHT + 2
        width = PLOT_WIDTH * bar.value / largest if largest else 0.0
        colour = REST_COLOUR if bar.rest else PALETTE[index % len(PALETTE)]
        text = escape(describe(bar))
        label = escape(bar.label)
        objects = "" if bar.objects is None else f' data-objects="{bar.objects}"'
        rows.append(
            f'<g class="row"><text x="{LABEL_WIDTH - 8}" y="{y + 14}" text-anchor="end">{label}</text>'
            f'<rect class="bar{" rest" if bar.rest else ""}" data-label="{label}" data-value="{bar.value}"{objects}'
            f' x="{LABEL_WIDTH}" y="{y}" width="{width:.3f}" height="{BAR_HEIGHT}" fill="{colour}">'
            f"<title>{label}: {text}</title></rect>"
            f'<text x="{LABEL_WIDTH + width + 6:.3f}" y="{y + 14}">{text}</text></g>'
        )
    if not bars:
        rows.append(f'<text x="{LABEL_WIDTH}" y="16">nothing to show</text>')
    return (
        f'<svg id="{escape(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}"'
        f' height="{height}" viewBox="0 0 {WIDTH} {height}" role="img">{"".join(rows)}</svg>'
    )
