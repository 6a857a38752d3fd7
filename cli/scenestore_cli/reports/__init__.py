"""Self-contained HTML reports for ``scenestore usage --html FILE`` and ``scenestore verify --html FILE``.

Each page is one file with its charts drawn as inline SVG by this package: no script, no stylesheet or font
from anywhere, and a Content-Security-Policy that forbids loading anything, so it opens the same from a laptop,
a CI artifact or an e-mail attachment, with no network. Every bar carries the figure it draws as data
attributes (``data-label``, ``data-value``, ``data-objects``), so a browser test can compare them with
``--json``.
"""

from __future__ import annotations

from scenestore_cli.reports.audit_report import audit_html
from scenestore_cli.reports.options import write_report
from scenestore_cli.reports.usage_report import usage_html

__all__ = ["audit_html", "usage_html", "write_report"]
