"""The page both reports share: one HTML document with inline CSS and a policy that loads nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Final

#: Nothing may be fetched when the page is viewed: styles are inline, charts are SVG, there is no script.
CONTENT_SECURITY_POLICY: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE: Final = """
*, *::before, *::after { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 820px;
       color: #1f2328; padding: 0 1rem; overflow-wrap: anywhere; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { font-size: 1.1rem; margin: 2rem 0 .5rem; }
.meta { color: #59636e; margin-top: 0; }
.chart .row { display: grid; grid-template-columns: minmax(6rem, 14rem) minmax(0, 1fr) minmax(6rem, 12rem);
              gap: .25rem .75rem; align-items: center; margin: .35rem 0; }
.chart .label { text-align: right; }
.chart svg.track { display: block; width: 100%; height: 18px; }
.chart .figure { font-variant-numeric: tabular-nums; }
.chart .row .tone { font-weight: 600; }
.status { display: inline-block; padding: .1rem .6rem; border-radius: .3rem; color: #fff; font-weight: 600; }
.status.ok { background: #1a7f37; } .status.failed { background: #cf222e; }
.tone-fail { color: #cf222e; } .tone-warn { color: #9a6700; } .tone-ok { color: #1a7f37; }
ul.keys { font: 12px ui-monospace, monospace; padding-left: 1.2rem; overflow-wrap: anywhere; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
ul.legend .swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: .15rem;
                    vertical-align: -.1rem; margin-right: .3rem; }
.swatch.fail { background: #cf222e; } .swatch.warn { background: #bf8700; } .swatch.ok { background: #1a7f37; }
.swatch.neutral { background: #8a8f98; }
.note { color: #59636e; }
@media (max-width: 600px) {
  body { margin: 1rem auto; }
  .chart .row { grid-template-columns: minmax(0, 1fr); gap: .1rem; margin: .6rem 0; }
  .chart .label { text-align: left; font-weight: 600; }
}
"""


@dataclass(frozen=True, slots=True)
class Section:
    """A titled part of a report; ``body`` is trusted markup built by this package (values already escaped)."""

    title: str
    body: str
    section_id: str


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def render_page(title: str, subtitle: str, sections: Sequence[Section], *, now: datetime | None = None) -> str:
    generated = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(subtitle)} &middot; generated {generated} by scenestore</p>',
    ]
    for section in sections:
        parts.append(
            f'<section id="{escape(section.section_id)}"><h2>{escape(section.title)}</h2>{section.body}</section>'
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
