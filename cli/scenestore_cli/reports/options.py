"""The ``--html FILE`` option and the one way a report reaches disk.

A path the report cannot be written to is bad usage (exit 2), found before the command does its work (an audit
of a large bucket takes minutes): its folder must exist and be writable, and the file, if it exists, writable.
Once written, the command says where, on stderr, so ``--json`` keeps stdout to one document.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeAlias

import click

#: What ``--html`` gives a command: the file to write, or ``None`` when the option is absent.
HtmlFile: TypeAlias = Path | None


def _writable(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    if value is None:
        return None
    folder = value.parent
    if not folder.is_dir():
        raise click.BadParameter(f"cannot write {value}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (value.exists() and not os.access(value, os.W_OK)):
        raise click.BadParameter(f"cannot write {value}: permission denied")
    return value


html_option = click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    callback=_writable,
    help="Also write the result as one self-contained HTML page (inline SVG charts; loads nothing when viewed).",
)


def write_report(path: Path, html: str) -> None:
    """Write the page as UTF-8 (what its ``<meta charset>`` declares) and say where, on stderr.

    A path that turns out unwritable all the same (the folder went away meanwhile, a full disk) is bad usage
    too: one line naming the file, exit 2 (``--json``: ``{"error": "usage", ...}``).
    """
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise click.UsageError(f"cannot write the HTML report to {path}: {exc.strerror or exc}") from exc
    click.echo(f"scenestore: HTML report written to {path.resolve()}", err=True)
