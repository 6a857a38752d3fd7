"""``scenestore usage --html FILE`` and ``scenestore verify --html FILE``: the pages hold the figures of ``--json``.

The pages are parsed here with the standard library's HTML parser (the browser test checks the same in
Chromium, with the drawn widths). Each page must be self-contained: no script, nothing fetched, a policy that
forbids fetching.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from scenestore.services import Services
from scenestore_cli.delete import usage_command
from scenestore_cli.migrate import verify_command
from scenestore_cli.reports import audit_html, usage_html
from scenestore_cli.reports.page import CONTENT_SECURITY_POLICY
from scenestore_cli.reports.svg import PLOT_WIDTH, Bar, bar_chart, top_with_rest
from scenestore_cli.reports.usage_report import TOP

from tests.support.reports import (
    LEGACY_REFERENCED,
    MISSING_KEY,
    check_top_chart,
    project_figures,
    seed_report_data,
    user_figures,
)


class ReportParser(HTMLParser):
    """Collects every chart's bars (their data attributes) and every key list of a report page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.charts: dict[str, list[dict[str, Any]]] = {}
        self.keys: dict[str, list[str]] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._chart: str | None = None
        self._list: str | None = None
        self._in_item = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if "chart" in str(attributes.get("class", "")).split():
            self._chart = attributes["id"]
            self.charts[str(self._chart)] = []
        elif tag == "rect" and self._chart is not None:
            self.charts[self._chart].append(
                {
                    "label": attributes["data-label"],
                    "name": attributes["data-name"],
                    "tone": attributes.get("data-tone"),
                    "fill": attributes["fill"],
                    "value": int(str(attributes["data-value"])),
                    "objects": int(str(attributes["data-objects"])) if "data-objects" in attributes else None,
                    "rest": "rest" in str(attributes["class"]).split(),
                    "width": float(str(attributes["width"])),
                }
            )
        elif tag == "ul" and "data-finding" in attributes:
            self._list = str(attributes["data-finding"])
            self.keys[self._list] = []
        elif tag == "li" and self._list is not None:
            self._in_item = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "ul":
            self._list = None
        elif tag == "li":
            self._in_item = False

    def handle_data(self, data: str) -> None:
        if self._in_item and self._list is not None:
            self.keys[self._list].append(data)


def parse(html: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(html)
    parser.close()
    return parser


def run_with_html(command: Any, args: list[str], path: Path) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(command, [*args, "--json", "--html", str(path)], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout), path.read_text(encoding="utf-8")


def assert_self_contained(html: str) -> None:
    parser = parse(html)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert not [attrs for _, attrs in parser.tags if {"src", "href"} & set(attrs)]
    assert ("meta", {"http-equiv": "Content-Security-Policy", "content": CONTENT_SECURITY_POLICY}) in parser.tags
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}  # the SVG namespace is a name, never fetched


# -- the chart itself ------------------------------------------------------------------------------------------------


def test_top_n_keeps_the_largest_and_sums_the_rest_into_one_bar() -> None:
    bars = [Bar(f"user-{n}", value=n * 10, objects=n) for n in range(1, 8)]
    chart = top_with_rest(bars, 3, "user")
    assert [bar.label for bar in chart] == ["user-7", "user-6", "user-5", "4 other users"]
    assert (chart[-1].value, chart[-1].objects, chart[-1].rest) == (100, 10, True)
    assert top_with_rest(bars, 7, "user") == sorted(bars, key=lambda bar: -bar.value)
    tied = top_with_rest([Bar("b", 5), Bar("a", 5), Bar("c", 1)], 2, "user")
    assert [bar.label for bar in tied] == ["a", "b", "1 other user"]


def test_bar_widths_are_proportional_and_labels_are_escaped() -> None:
    svg = bar_chart("c", [Bar("<script>x</script>", 200), Bar("b&c", 50), Bar("zero", 0)], lambda bar: str(bar.value))
    bars = parse(svg).charts["c"]
    assert [bar["width"] for bar in bars] == pytest.approx([PLOT_WIDTH, PLOT_WIDTH / 4, 0.0], abs=0.001)
    assert bars[0]["label"] == "<script>x</script>" and "<script>" not in svg
    assert parse(bar_chart("empty", [], str)).charts["empty"] == []


# -- usage -----------------------------------------------------------------------------------------------------------


def test_usage_counts_layout_keys_by_kind_and_apart_from_legacy(services: Services, tmp_path: Path) -> None:
    objects = seed_report_data(services)
    exit_code, report, _ = run_with_html(usage_command, [], tmp_path / "usage.html")
    assert exit_code == 0
    layout = {key: size for key, size in objects.items() if key.startswith("users/")}
    assert report["layout"] == {"objects": len(layout), "bytes": sum(layout.values())}
    assert report["layout"]["objects"] + report["legacy"]["objects"] == report["total"]["objects"]
    for kind in ("image", "video", "audio"):
        keys = [key for key in layout if f"/{kind}/" in key]
        assert report["kinds"][kind] == {"objects": len(keys), "bytes": sum(layout[key] for key in keys)}, kind
    outputs = [key for key in layout if "/output/" in key]
    assert report["kinds"]["output"]["objects"] == len(outputs)
    assert report["kinds"]["other"] == {"objects": 1, "bytes": 64}  # the avatar outside any project


def test_usage_html_has_the_figures_of_json(services: Services, tmp_path: Path) -> None:
    seed_report_data(services)
    exit_code, report, html = run_with_html(usage_command, [], tmp_path / "usage.html")
    assert exit_code == 0
    charts = parse(html).charts
    assert len(report["users"]) > TOP  # so the rest bar is exercised
    check_top_chart(charts["users"], user_figures(report), TOP)
    check_top_chart(charts["projects"], project_figures(report), TOP)
    assert {bar["name"]: bar["value"] for bar in charts["kinds"]} == {
        kind: tally["objects"] for kind, tally in report["kinds"].items()
    }
    layout, legacy = charts["layout"]
    assert (layout["value"], layout["objects"]) == (report["layout"]["bytes"], report["layout"]["objects"])
    assert (legacy["value"], legacy["objects"]) == (report["legacy"]["bytes"], report["legacy"]["objects"])
    assert_self_contained(html)


def test_usage_html_for_one_user(services: Services, tmp_path: Path) -> None:
    seed_report_data(services)
    exit_code, report, html = run_with_html(usage_command, ["--user", "u01"], tmp_path / "u01.html")
    assert exit_code == 0
    charts = parse(html).charts
    check_top_chart(charts["users"], user_figures(report), TOP)
    assert [bar["label"] for bar in charts["users"]] == ["u01"]
    assert charts["layout"][1]["value"] == report["legacy"]["bytes"] > 0  # legacy objects u01's documents reference
    assert "Missing: 1 referenced legacy object." in html


@pytest.mark.parametrize("command", [usage_command, verify_command], ids=["usage", "verify"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_an_unwritable_html_path_is_bad_usage_before_any_work(
    services: Services, tmp_path: Path, command: Any, as_json: bool
) -> None:
    """A folder that does not exist, or a file where the folder should be: exit 2, one line naming the path,
    and the command does none of its work (nothing listed, nothing printed as a result)."""
    (tmp_path / "a-file").write_text("x")
    for target in (tmp_path / "no-such-dir" / "report.html", tmp_path / "a-file" / "report.html"):
        result = CliRunner().invoke(command, [*(["--json"] if as_json else []), "--html", str(target)])
        assert result.exit_code == 2, result.output
        assert str(target) in result.output and "Traceback" not in result.output
        assert not target.exists()
        if as_json:
            assert json.loads(result.stdout)["error"] == "usage"
        else:
            assert result.stdout == "" and "objects" not in result.output


@pytest.mark.parametrize("command", [usage_command, verify_command], ids=["usage", "verify"])
def test_html_says_where_the_report_was_written(services: Services, tmp_path: Path, command: Any) -> None:
    target = tmp_path / "report.html"
    result = CliRunner().invoke(command, ["--json", "--html", str(target)], catch_exceptions=False)
    assert f"HTML report written to {target.resolve()}" in result.stderr
    json.loads(result.stdout)  # stdout is still one JSON document
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_the_page_renders_from_the_report_alone() -> None:
    """The renderer reads only the report's fields: a report from elsewhere (a saved --json) renders too."""
    report = {
        "bucket": "b",
        "user_id": None,
        "users": [
            {"user_id": "a", "objects": 2, "bytes": 30, "projects": [{"project_id": "p", "objects": 2, "bytes": 30}]}
        ],
        "legacy": {"objects": 1, "bytes": 5, "scope": "bucket"},
        "layout": {"objects": 2, "bytes": 30},
        "kinds": {"image": {"objects": 2, "bytes": 30}},
        "total": {"objects": 3, "bytes": 35},
    }
    charts = parse(usage_html(report)).charts
    assert [(bar["label"], bar["value"]) for bar in charts["projects"]] == [("a/p", 30)]


# -- verify ----------------------------------------------------------------------------------------------------------


def test_verify_html_has_the_findings_and_keys_of_json(services: Services, tmp_path: Path) -> None:
    seed_report_data(services)
    exit_code, result, html = run_with_html(verify_command, [], tmp_path / "verify.html")
    assert exit_code == 1  # a referenced object is missing
    page = parse(html)
    findings = ("missing", "legacy_referenced", "orphaned", "unreferenced")
    assert {bar["name"]: bar["value"] for bar in page.charts["findings"]} == {
        name: result[name] for name in (*findings, "orphan_scenes")
    }
    assert all(result[name] > 0 for name in findings)  # the seed exercises every finding
    lists = {"missing": "missing_keys", "legacy_referenced": "legacy_keys", "orphaned": "orphaned_keys"}
    lists["unreferenced"] = "unreferenced_keys"
    assert page.keys == {name: result[field] for name, field in lists.items()}
    assert MISSING_KEY in page.keys["missing"] and LEGACY_REFERENCED in page.keys["legacy_referenced"]
    assert 'data-ok="false"' in html
    assert_self_contained(html)


def test_verify_html_says_when_it_lists_only_a_sample() -> None:
    result = {
        "ok": True,
        "clean": False,
        "objects": 40,
        "bytes": 4000,
        "references": 0,
        "missing": 0,
        "missing_keys": [],
        "legacy_referenced": 0,
        "legacy_keys": [],
        "orphaned": 0,
        "orphaned_bytes": 0,
        "orphaned_keys": [],
        "unreferenced": 40,
        "unreferenced_bytes": 4000,
        "unreferenced_keys": [f"k{n}" for n in range(20)],
    }
    html = audit_html(result)
    assert "The first 20 of 40 keys" in html
    assert "0 keys: none found" in html  # a finding with nothing in it, in words (and grey)
    assert parse(html).keys == {"unreferenced": result["unreferenced_keys"]}
    assert 'data-ok="true"' in html


def test_verify_bars_are_coloured_by_meaning_and_say_it_in_words(services: Services, tmp_path: Path) -> None:
    """In a failed audit the failing bar is red and says it fails the audit; the harmless ones are green and say
    they do not; labels are words, not field names."""
    seed_report_data(services)
    _, result, html = run_with_html(verify_command, [], tmp_path / "verify.html")
    bars = {bar["name"]: bar for bar in parse(html).charts["findings"]}
    assert result["ok"] is False
    assert (bars["missing"]["tone"], bars["missing"]["fill"]) == ("fail", "#cf222e")
    assert (bars["unreferenced"]["tone"], bars["unreferenced"]["fill"]) == ("ok", "#1a7f37")
    assert bars["legacy_referenced"]["tone"] == "warn"
    assert "_" not in "".join(bar["label"] for bar in bars.values())
    assert f"{result['missing']} key: fails the audit" in html or f"{result['missing']} keys: fails the audit" in html
    assert "harmless, does not fail the audit" in html


def test_usage_labels_are_words_and_legacy_is_told_apart() -> None:
    report = {
        "bucket": "b",
        "user_id": None,
        "users": [],
        "legacy": {"objects": 1, "bytes": 5, "scope": "bucket"},
        "layout": {"objects": 0, "bytes": 0},
        "kinds": {"image": {"objects": 1, "bytes": 3}, "output": {"objects": 1, "bytes": 2}},
        "total": {"objects": 1, "bytes": 5},
    }
    html = usage_html(report)
    charts = parse(html).charts
    assert [bar["label"] for bar in charts["kinds"]] == ["Images", "Finished videos"]
    assert [(bar["label"], bar["tone"]) for bar in charts["layout"]] == [
        ("Layout keys (users/)", "ok"),
        ("Legacy keys", "warn"),
    ]
    assert "still to migrate" in html and "1 object, " in html and "1 objects" not in html
