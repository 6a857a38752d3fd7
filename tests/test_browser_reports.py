"""The HTML reports in a real browser (Debian's Chromium driven by Playwright, as tests/support/browser.py does).

GIVEN a bucket and database with more users than a chart shows, every kind of key and every audit finding
WHEN ``scenestore usage --json --html FILE`` and ``scenestore verify --json --html FILE`` run and Chromium opens FILE
THEN every bar's figure equals ``--json`` (the top users and projects, the rest summed, objects by kind, legacy
against layout, each finding), the drawn bar widths are proportional to those figures, the page asks for nothing
but itself and raises no error, and a screenshot of each page lands in test-artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import pytest
from click.testing import CliRunner
from scenestore.services import Services
from scenestore_cli.delete import usage_command
from scenestore_cli.migrate import verify_command
from scenestore_cli.reports.usage_report import TOP

from tests.support.browser import artifact_path, chromium_context, require_chromium
from tests.support.reports import check_top_chart, project_figures, seed_report_data, user_figures
from tests.support.seed import put_objects

pytestmark = pytest.mark.browser

#: Every bar of every chart as the browser lays it out.
_BARS_JS = """() => Object.fromEntries([...document.querySelectorAll(".chart")].map((chart) => [
  chart.id,
  [...chart.querySelectorAll("rect.bar")].map((rect) => ({
    label: rect.dataset.label,
    name: rect.dataset.name,
    tone: rect.dataset.tone ?? null,
    fill: getComputedStyle(rect).fill,
    figure: rect.closest(".row").querySelector(".figure").textContent,
    value: Number(rect.dataset.value),
    objects: rect.dataset.objects === undefined ? null : Number(rect.dataset.objects),
    rest: rect.classList.contains("rest"),
    width: rect.getBoundingClientRect().width,
  })),
]))"""
_KEYS_JS = """() => Object.fromEntries([...document.querySelectorAll("ul[data-finding]")].map((ul) => [
  ul.dataset.finding, [...ul.querySelectorAll("li")].map((li) => li.textContent),
]))"""


def report(command: Any, path: Path) -> dict[str, Any]:
    result = CliRunner().invoke(command, ["--json", "--html", str(path)], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def open_report(context: Any, path: Path, width: int | None = None) -> tuple[Any, list[str], list[str]]:
    """The page, the URLs it requested and its errors (script errors, console errors such as CSP refusals)."""
    page = context.new_page()
    if width is not None:
        page.set_viewport_size({"width": width, "height": 844})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, requests, errors


def check_widths(charts: dict[str, list[dict[str, Any]]]) -> None:
    """Each chart draws its bars in proportion to their figures (within a pixel), the largest the widest."""
    for chart_id, bars in charts.items():
        largest = max(bars, key=lambda bar: bar["value"])
        assert largest["width"] > 100, chart_id
        for bar in bars:
            expected = largest["width"] * bar["value"] / largest["value"]
            assert bar["width"] == pytest.approx(expected, abs=1.0), (chart_id, bar)


@contextmanager
def report_page(
    services: Services, command: Any, path: Path, screenshot: str, *, width: int | None = None
) -> Iterator[tuple[dict[str, Any], Any]]:
    """Seeds the report data, runs ``command`` writing ``path`` and opens it in Chromium (``width`` px wide when
    given): yields the ``--json`` document and the page; after the block, a screenshot of the page is saved as
    ``screenshot`` and the page must have asked for nothing but itself and raised no error."""
    chromium = require_chromium()
    seed_report_data(services)
    document = report(command, path)
    with chromium_context(chromium) as context:
        page, requests, errors = open_report(context, path, width)
        yield document, page
        page.screenshot(path=str(artifact_path(screenshot)), full_page=True)
    assert requests == [path.as_uri()] and errors == []


def test_usage_report_bars_match_json_in_chromium(services: Services, tmp_path: Path) -> None:
    with report_page(services, usage_command, tmp_path / "usage.html", "usage-report.png") as (figures, page):
        charts = page.evaluate(_BARS_JS)
    assert set(charts) == {"users", "projects", "kinds", "layout"}
    check_top_chart(charts["users"], user_figures(figures), TOP)
    check_top_chart(charts["projects"], project_figures(figures), TOP)
    assert any(bar["rest"] for bar in charts["users"])
    assert {bar["name"]: bar["value"] for bar in charts["kinds"]} == {
        kind: tally["objects"] for kind, tally in figures["kinds"].items()
    }
    assert [(bar["value"], bar["objects"]) for bar in charts["layout"]] == [
        (figures["layout"]["bytes"], figures["layout"]["objects"]),
        (figures["legacy"]["bytes"], figures["legacy"]["objects"]),
    ]
    check_widths(charts)


def test_verify_report_findings_and_keys_match_json_in_chromium(services: Services, tmp_path: Path) -> None:
    with report_page(services, verify_command, tmp_path / "verify.html", "verify-report.png") as (result, page):
        charts = page.evaluate(_BARS_JS)
        keys = page.evaluate(_KEYS_JS)
        verdict = page.text_content(".status")
    findings = {"missing": "missing_keys", "legacy_referenced": "legacy_keys", "orphaned": "orphaned_keys"}
    findings["unreferenced"] = "unreferenced_keys"
    bars = {bar["name"]: bar["value"] for bar in charts["findings"]}
    assert bars == {name: result[name] for name in (*findings, "orphan_scenes")}
    assert keys == {name: result[field] for name, field in findings.items()}
    assert verdict == ("OK" if result["ok"] else "FAILED")
    check_widths(charts)


#: A phone's width in CSS pixels (an iPhone 12 to 15).
PHONE: Final = 390
#: How far the page scrolls sideways, and the elements that stick out past the viewport's right edge.
_OVERFLOW_JS = """() => ({
  scrollWidth: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
  clientWidth: document.documentElement.clientWidth,
  outside: [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
    .map((el) => el.tagName + "." + (el.className.baseVal ?? el.className)),
})"""


def _rgb(colour: str) -> tuple[int, ...]:
    """``rgb(207, 34, 46)`` -> ``(207, 34, 46)``."""
    return tuple(int(part) for part in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3])


def _long_names(services: Services) -> None:
    """A key and a user id as long as the layout allows, so a label or a listed key would overflow if it could."""
    long_key = f"users/{'u' * 100}/projects/{'p' * 120}/scenes/{'s' * 100}/image/{'a-long-file-name' * 7}.png"
    put_objects(services, [long_key], body=b"x" * 50_000)


@pytest.mark.parametrize("which", ["usage", "verify"])
def test_reports_fit_a_phone_without_sideways_scrolling(services: Services, tmp_path: Path, which: str) -> None:
    """GIVEN the reports' data plus names as long as the layout allows WHEN a report is opened 390 px wide THEN
    nothing scrolls sideways (scrollWidth equals the viewport), no element sticks out, and the bars are still
    drawn in proportion to their figures."""
    _long_names(services)
    command = usage_command if which == "usage" else verify_command
    path = tmp_path / f"{which}.html"
    with report_page(services, command, path, f"{which}-report-phone.png", width=PHONE) as (_, page):
        overflow = page.evaluate(_OVERFLOW_JS)
        charts = page.evaluate(_BARS_JS)
    assert overflow["clientWidth"] == PHONE
    assert overflow["scrollWidth"] <= PHONE and overflow["outside"] == [], overflow
    check_widths(charts)


def test_a_failed_audit_is_red_where_it_fails_and_says_so_in_words(services: Services, tmp_path: Path) -> None:
    with report_page(services, verify_command, tmp_path / "verify.html", "verify-report-colours.png") as (result, page):
        bars = {bar["name"]: bar for bar in page.evaluate(_BARS_JS)["findings"]}
        status_colour = page.eval_on_selector(".status", "(el) => getComputedStyle(el).backgroundColor")
    assert result["ok"] is False and result["missing"] > 0 and result["unreferenced"] > 0
    red, green, blue = _rgb(bars["missing"]["fill"])
    assert red > 150 and red > green + 80 and red > blue + 80, bars["missing"]  # red-ish
    for harmless in ("unreferenced", "orphaned"):
        red, green, blue = _rgb(bars[harmless]["fill"])
        assert green >= red, bars[harmless]  # green or grey, never red
        assert "does not fail the audit" in bars[harmless]["figure"]
    assert bars["missing"]["figure"].endswith("fails the audit")
    assert "does not" not in bars["missing"]["figure"]
    assert all("_" not in bar["label"] for bar in bars.values())  # words, not field names
    red, green, blue = _rgb(status_colour)
    assert red > green + 80
