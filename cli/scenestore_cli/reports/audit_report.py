"""``scenestore verify --html``: the audit (``scenestore.migration.verify_storage``) as one page.

A bar per finding (missing, legacy referenced, orphaned, unreferenced, scenes of deleted projects) and, under
it, what the audit returned for each. A bar's colour says what the finding means, and its figure says it in
words too: red for what fails the audit (a referenced object missing), amber for work left (legacy keys), green
for what is harmless, grey for a finding with nothing in it. The audit keeps only the first keys of a finding,
and the page says so when there are more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any, Final

from scenestore_cli.common import counted
from scenestore_cli.reports.page import Section, human_bytes, render_page
from scenestore_cli.reports.svg import Bar, Tone, bar_chart


@dataclass(frozen=True, slots=True)
class Finding:
    """One kind of finding: the report's fields for it and what it means for an operator."""

    name: str
    #: The bar's label: what the finding is, in words.
    label: str
    title: str
    keys_field: str
    bytes_field: str | None
    meaning: str
    #: Its tone when present: only ``Tone.FAIL`` fails the audit.
    tone: Tone
    #: What its list holds (``key``, or ``scene`` for scene documents).
    noun: str = "key"


FINDINGS: Final = (
    Finding(
        "missing",
        "Missing objects",
        "Missing: referenced, no object",
        "missing_keys",
        None,
        "A document points at a key the bucket does not hold: the app shows a broken file. Fails the audit.",
        Tone.FAIL,
    ),
    Finding(
        "legacy_referenced",
        "Legacy keys still referenced",
        "Legacy keys still referenced",
        "legacy_keys",
        None,
        "References the migration has not moved into users/ yet. Work left to do; does not fail the audit.",
        Tone.WARN,
    ),
    Finding(
        "orphaned",
        "Objects under deleted projects",
        "Orphaned: under projects that are gone",
        "orphaned_keys",
        "orphaned_bytes",
        "Objects under users/{u}/projects/{p}/ whose project no longer exists (or belongs to someone else): the "
        "deletion still to run, or left over. Harmless; does not fail the audit.",
        Tone.OK,
    ),
    Finding(
        "unreferenced",
        "Objects no document references",
        "Unreferenced: no document points at them",
        "unreferenced_keys",
        "unreferenced_bytes",
        "Left-overs and uploads never completed; still billed. Harmless; does not fail the audit.",
        Tone.OK,
    ),
    Finding(
        "orphan_scenes",
        "Scenes of deleted projects",
        "Scene documents whose project is gone",
        "orphan_scene_ids",
        None,
        "Scene documents the app has kept after deleting their project. Their references are neither missing nor "
        "legacy: reported apart, harmless; does not fail the audit.",
        Tone.OK,
        "scene",
    ),
)

#: What each tone means, in the words the page uses beside the colour.
TONE_WORDS: Final = {
    Tone.FAIL: "fails the audit",
    Tone.WARN: "work left, does not fail the audit",
    Tone.OK: "harmless, does not fail the audit",
    Tone.NEUTRAL: "none found",
}


def _tone(finding: Finding, result: dict[str, Any]) -> Tone:
    return finding.tone if result.get(finding.name, 0) else Tone.NEUTRAL


def finding_bars(result: dict[str, Any]) -> list[Bar]:
    return [
        Bar(finding.label, result.get(finding.name, 0), name=finding.name, tone=_tone(finding, result))
        for finding in FINDINGS
    ]


def _describe(result: dict[str, Any]) -> Callable[[Bar], str]:
    by_name = {finding.name: finding for finding in FINDINGS}

    def describe(bar: Bar) -> str:
        finding = by_name[str(bar.name)]
        size = result.get(finding.bytes_field) if finding.bytes_field else None
        figure = counted(bar.value, finding.noun) + (f", {human_bytes(size)}" if size is not None else "")
        return f"{figure}: {TONE_WORDS[bar.tone or Tone.NEUTRAL]}"

    return describe


def _legend() -> str:
    items = "".join(
        f'<li><span class="swatch {tone}"></span>{escape(TONE_WORDS[tone])}</li>'
        for tone in (Tone.FAIL, Tone.WARN, Tone.OK, Tone.NEUTRAL)
    )
    return f'<ul class="legend" aria-label="what the colours mean">{items}</ul>'


def _key_list(result: dict[str, Any], finding: Finding) -> str:
    keys = result.get(finding.keys_field, [])
    count = result.get(finding.name, 0)
    items = "".join(f"<li>{escape(key)}</li>" for key in keys)
    more = (
        f'<p class="note">The first {len(keys)} of {counted(count, finding.noun)} (the audit keeps a sample).</p>'
        if count > len(keys)
        else ""
    )
    body = f'<ul class="keys" data-finding="{finding.name}" data-count="{count}">{items}</ul>' if keys else ""
    tone = _tone(finding, result)
    verdict = f'<p><strong class="tone-{tone}">{escape(counted(count, finding.noun))}: {TONE_WORDS[tone]}.</strong></p>'
    return f'{verdict}<p class="note">{escape(finding.meaning)}</p>{body}{more}'


def audit_html(result: dict[str, Any]) -> str:
    status = "ok" if result["ok"] else "failed"
    why = (
        "nothing fails the audit"
        if result["ok"]
        else f"{counted(result['missing'], 'referenced object')} missing: the audit fails"
    )
    verdict = (
        f'<p><span class="status {status}" data-ok="{str(result["ok"]).lower()}">{status.upper()}</span> '
        f"{escape(why)}. {counted(result['objects'], 'object')} ({human_bytes(result['bytes'])}), "
        f"{counted(result['references'], 'reference')}"
        f"{'; clean (nothing legacy left)' if result.get('clean') else ''}.</p>"
    )
    sections = [
        Section(
            "Findings", verdict + bar_chart("findings", finding_bars(result), _describe(result)) + _legend(), "findings"
        ),
        *(Section(f.title, _key_list(result, f), f"keys-{f.name}") for f in FINDINGS),
    ]
    return render_page("scenestore verify", "audit of the bucket against the documents", sections)
