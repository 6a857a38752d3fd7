"""The ``--html FILE`` option and the one way a report reaches disk."""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

import click

#: What ``--html`` gives a command: the file to write, or ``None`` when the option is absent.
HtmlFile: TypeAlias = Path | None

html_option = click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Also write the result as one self-contained HTML page (inline SVG charts; loads nothing when viewed).",
)


def write_report(path: Path, html: str) -> None:
    """Write the page as UTF-8 (what its ``<meta charset>`` declares); an unwritable path is a clean error."""
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise click.FileError(str(path), hint=exc.strerror or str(exc)) from exc
