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
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 820px;
       color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { font-size: 1.1rem; margin: 2rem 0 .5rem; }
.meta { color: #59636e; margin-top: 0; }
.chart text { font: 12px system-ui, sans-serif; fill: #1f2328; }
table { border-collapse: collapse; }
td, th { padding: .15rem .75rem .15rem 0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { display: inline-block; padding: .1rem .6rem; border-radius: .3rem; color: #fff; font-weight: 600; }
.status.ok { background: #1a7f37; } .status.failed { background: #cf222e; }
ul.keys { font: 12px ui-monospace, monospace; padding-left: 1.2rem; }
.note { color: #59636e; }
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


def counted(number: int | None, noun: str) -> str:
    """``1 object``, ``2 objects``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


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
