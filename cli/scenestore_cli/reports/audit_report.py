"""``scenestore verify --html``: the audit (``scenestore.migration.verify_storage``) as one page.

A bar per finding (missing, legacy referenced, orphaned, unreferenced) and, under it, the keys the audit
returned for each. The audit keeps only the first keys of a finding, and the page says so when there are more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any, Final

from scenestore_cli.reports.page import Section, counted, human_bytes, render_page
from scenestore_cli.reports.svg import Bar, bar_chart


@dataclass(frozen=True, slots=True)
class Finding:
    """One kind of finding: the report's fields for it and what it means for an operator."""

    name: str
    title: str
    keys_field: str
    bytes_field: str | None
    meaning: str


FINDINGS: Final = (
    Finding(
        "missing",
        "Missing: referenced, no object",
        "missing_keys",
        None,
        "A document points at a key the bucket does not hold: the app shows a broken file. Fails the check.",
    ),
    Finding(
        "legacy_referenced",
        "Legacy keys still referenced",
        "legacy_keys",
        None,
        "References the migration has not moved into users/ yet.",
    ),
    Finding(
        "orphaned",
        "Orphaned: under projects that are gone",
        "orphaned_keys",
        "orphaned_bytes",
        "Objects under users/{u}/projects/{p}/ whose project no longer exists (or belongs to someone else).",
    ),
    Finding(
        "unreferenced",
        "Unreferenced: no document points at them",
        "unreferenced_keys",
        "unreferenced_bytes",
        "Left-overs and uploads never completed; still billed.",
    ),
)


def finding_bars(result: dict[str, Any]) -> list[Bar]:
    return [Bar(finding.name, result[finding.name]) for finding in FINDINGS]


def _describe(result: dict[str, Any]) -> Callable[[Bar], str]:
    sizes = {f.name: result[f.bytes_field] for f in FINDINGS if f.bytes_field}

    def describe(bar: Bar) -> str:
        size = sizes.get(bar.label)
        return counted(bar.value, "key") + (f", {human_bytes(size)}" if size is not None else "")

    return describe


def _key_list(result: dict[str, Any], finding: Finding) -> str:
    keys = result[finding.keys_field]
    count = result[finding.name]
    items = "".join(f"<li>{escape(key)}</li>" for key in keys)
    more = (
        f'<p class="note">The first {len(keys)} of {count} keys (the audit keeps a sample).</p>'
        if count > len(keys)
        else ""
    )
    body = f'<ul class="keys" data-finding="{finding.name}" data-count="{count}">{items}</ul>' if keys else ""
    return f'<p class="note">{escape(finding.meaning)}</p>{body}{more or ("" if keys else "<p>None.</p>")}'


def audit_html(result: dict[str, Any]) -> str:
    status = "ok" if result["ok"] else "failed"
    verdict = (
        f'<p><span class="status {status}" data-ok="{str(result["ok"]).lower()}">{status.upper()}</span> '
        f"{result['objects']} objects ({human_bytes(result['bytes'])}), {result['references']} references"
        f"{'; clean (nothing legacy left)' if result.get('clean') else ''}</p>"
    )
    sections = [
        Section("Findings", verdict + bar_chart("findings", finding_bars(result), _describe(result)), "findings"),
        *(Section(f.title, _key_list(result, f), f"keys-{f.name}") for f in FINDINGS),
    ]
    return render_page("scenestore verify", "audit of the bucket against the documents", sections)
