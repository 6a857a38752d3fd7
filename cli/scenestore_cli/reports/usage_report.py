"""``scenestore usage --html``: the usage report (``scenestore_cli.usage.storage_usage``) as charts.

Bytes per user and per project (the largest ``top``, the rest summed in one bar), objects by kind, and legacy
against layout keys. Every figure is read from the very report ``--json`` prints, never recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any, Final

from scenestore_cli.common import counted
from scenestore_cli.reports.page import Section, human_bytes, render_page
from scenestore_cli.reports.svg import Bar, Tone, bar_chart, top_with_rest

TOP: Final = 10


def _bytes_and_objects(bar: Bar) -> str:
    return f"{human_bytes(bar.value)} in {counted(bar.objects, 'object')}"


def _objects_and_bytes(bytes_by_name: dict[str, int]) -> Callable[[Bar], str]:
    def describe(bar: Bar) -> str:
        return f"{counted(bar.value, 'object')}, {human_bytes(bytes_by_name[str(bar.name)])}"

    return describe


def user_bars(report: dict[str, Any], top: int = TOP) -> list[Bar]:
    users = [Bar(user["user_id"], user["bytes"], user["objects"]) for user in report["users"]]
    return top_with_rest(users, top, "user")


def project_bars(report: dict[str, Any], top: int = TOP) -> list[Bar]:
    projects = [
        Bar(f"{user['user_id']}/{project['project_id']}", project["bytes"], project["objects"])
        for user in report["users"]
        for project in user["projects"]
    ]
    return top_with_rest(projects, top, "project")


#: A kind's label on the page (``--json`` and ``data-name`` keep the kind itself).
KIND_LABELS: Final = {
    "image": "Images",
    "video": "Videos",
    "audio": "Audio",
    "output": "Finished videos",
    "other": "Other files under users/",
}


def kind_bars(report: dict[str, Any]) -> list[Bar]:
    return [
        Bar(KIND_LABELS.get(kind, kind.replace("_", " ").capitalize()), tally["objects"], name=kind)
        for kind, tally in report["kinds"].items()
    ]


def layout_bars(report: dict[str, Any]) -> list[Bar]:
    """Keys in the layout (green: where they belong) against legacy keys (amber: the migration's work left)."""
    return [
        Bar(
            "Layout keys (users/)", report["layout"]["bytes"], report["layout"]["objects"], name="layout", tone=Tone.OK
        ),
        Bar("Legacy keys", report["legacy"]["bytes"], report["legacy"]["objects"], name="legacy", tone=Tone.WARN),
    ]


def _layout_words(bar: Bar) -> str:
    meaning = "in place" if bar.name == "layout" else "still to migrate"
    return f"{_bytes_and_objects(bar)}: {meaning}" if bar.value or bar.objects else _bytes_and_objects(bar)


def _legacy_note(report: dict[str, Any]) -> str:
    if report["user_id"] is None:
        return "Legacy keys are the keys outside users/ (contract section 1); the migration moves them."
    note = (
        "Legacy keys carry no owner, so for one user the legacy bar is the legacy objects that user's documents "
        "reference."
    )
    missing = report["legacy"].get("missing")
    return note + (f" Missing: {counted(missing, 'referenced legacy object')}." if missing else "")


def usage_html(report: dict[str, Any], *, top: int = TOP) -> str:
    scope = f"user {report['user_id']}" if report["user_id"] is not None else "the whole bucket"
    legacy_note = _legacy_note(report)
    kind_bytes = {kind: tally["bytes"] for kind, tally in report["kinds"].items()}
    total = report["total"]
    sections = [
        Section(
            f"Bytes per user (largest {top}, the rest summed)",
            bar_chart("users", user_bars(report, top), _bytes_and_objects),
            "per-user",
        ),
        Section(
            f"Bytes per project (largest {top}, the rest summed)",
            bar_chart("projects", project_bars(report, top), _bytes_and_objects)
            + '<p class="note">Objects of a user outside any project are counted in the user\'s bar only.</p>',
            "per-project",
        ),
        Section(
            "Objects by kind (layout keys)",
            bar_chart("kinds", kind_bars(report), _objects_and_bytes(kind_bytes)),
            "by-kind",
        ),
        Section(
            "Legacy against layout keys (bytes)",
            bar_chart("layout", layout_bars(report), _layout_words) + f'<p class="note">{escape(legacy_note)}</p>',
            "legacy-layout",
        ),
    ]
    listed = f"{counted(total['objects'], 'object')}, {human_bytes(total['bytes'])} listed"
    subtitle = f"bucket {report['bucket']}, {scope}: {listed}"
    return render_page("scenestore usage", subtitle, sections)
