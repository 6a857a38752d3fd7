"""Horizontal bar charts: the one chart type both reports need, as HTML rows with an inline SVG bar each.

A vendored charting library would add hundreds of kilobytes of JavaScript to every report and a licence to
track, for bars; SVG drawn here is plain markup that prints, scales and needs no script at all.

Each row is its label, its bar and its figure in words. The label and the figure are HTML text, so they wrap
and keep their size on a phone; the bar is an SVG whose ``viewBox`` is :data:`PLOT_WIDTH` units wide and
stretches to the width the row leaves it, so widths stay proportional at any screen size. On a wide screen the
three sit on one line; below 600 px the label goes above the bar and the figure under it (``page.STYLE``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from html import escape
from typing import Final

#: The width of a bar's coordinate space; a bar's drawn width is this scaled to its row.
PLOT_WIDTH: Final = 1000
BAR_HEIGHT: Final = 18
PALETTE: Final = ("#2f6db5", "#3a9a6b", "#c47f17", "#9b4dca", "#c2410c", "#0e7490")
REST_COLOUR: Final = "#8a8f98"


class Tone(StrEnum):
    """What a bar means to the reader, when its colour should say so (otherwise a palette colour)."""

    FAIL = "fail"  # makes the check fail: red
    WARN = "warn"  # work left to do, not a failure: amber
    OK = "ok"  # fine or harmless: green
    NEUTRAL = "neutral"  # informational (nothing present, or an aggregate): grey


TONE_COLOURS: Final = {Tone.FAIL: "#cf222e", Tone.WARN: "#bf8700", Tone.OK: "#1a7f37", Tone.NEUTRAL: REST_COLOUR}


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: what it is, the figure it draws, and (where known) how many objects that figure covers."""

    label: str
    value: int
    objects: int | None = None
    #: The sum of the entries left out of a top-N chart.
    rest: bool = False
    #: The field the bar stands for in ``--json`` (``data-name``); the label when it has none.
    name: str | None = None
    #: Its meaning, when the colour should carry one (``data-tone``); else a palette colour by position.
    tone: Tone | None = None


def top_with_rest(bars: Sequence[Bar], top: int, noun: str) -> list[Bar]:
    """The ``top`` largest bars (largest first, ties by label) and, if any are left, one bar summing them."""
    ranked = sorted(bars, key=lambda bar: (-bar.value, bar.label))
    kept, left = ranked[:top], ranked[top:]
    if not left:
        return kept
    objects = None if any(bar.objects is None for bar in left) else sum(bar.objects or 0 for bar in left)
    label = f"{len(left)} other {noun}{'' if len(left) == 1 else 's'}"
    return [*kept, Bar(label, sum(bar.value for bar in left), objects, rest=True)]


def _colour(bar: Bar, index: int) -> str:
    if bar.tone is not None:
        return TONE_COLOURS[bar.tone]
    return REST_COLOUR if bar.rest else PALETTE[index % len(PALETTE)]


def bar_chart(chart_id: str, bars: Sequence[Bar], describe: Callable[[Bar], str]) -> str:
    """One row per bar, widths proportional to the largest value; ``describe`` writes the figure in words."""
    largest = max((bar.value for bar in bars), default=0)
    rows = []
    for index, bar in enumerate(bars):
        width = PLOT_WIDTH * bar.value / largest if largest else 0.0
        text = escape(describe(bar))
        label = escape(bar.label)
        name = escape(bar.name if bar.name is not None else bar.label)
        objects = "" if bar.objects is None else f' data-objects="{bar.objects}"'
        tone = "" if bar.tone is None else f' data-tone="{bar.tone}"'
        rows.append(
            f'<div class="row"><span class="label">{label}</span>'
            f'<svg class="track" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {PLOT_WIDTH} {BAR_HEIGHT}"'
            f' preserveAspectRatio="none" height="{BAR_HEIGHT}" role="img" aria-label="{label}: {text}">'
            f'<rect class="bar{" rest" if bar.rest else ""}" data-label="{label}" data-name="{name}"'
            f' data-value="{bar.value}"{objects}{tone} x="0" y="0" width="{width:.3f}" height="{BAR_HEIGHT}"'
            f' fill="{_colour(bar, index)}"><title>{label}: {text}</title></rect></svg>'
            f'<span class="figure">{text}</span></div>'
        )
    if not bars:
        rows.append('<p class="note">Nothing to show.</p>')
    return f'<div id="{escape(chart_id)}" class="chart">{"".join(rows)}</div>'
