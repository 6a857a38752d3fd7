"""The documentation holds together: links resolve, the spec is in the repo, citations name real sections.

- Every relative link in every git-tracked Markdown file points at a tracked file or folder of this repository,
  and a ``#anchor`` names a heading of the target (GitHub's slugs).
- No tracked file outside ``.ci/`` points at the workspace's shared folder one level above the repository:
  the spec a clone can read is ``docs/contract.md``.
- Every "contract section N" (or "contract §N", "contract sections N and M") in tracked code, docs and templates
  names a section that ``docs/contract.md`` has.

The checker is tested against files with known breakage too, so a checker that finds nothing cannot pass.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "contract.md"
#: The workspace folder beside the repository (spelt in two parts so this file does not mention it itself).
OUTSIDE_REF = "../" + "shared"
CITING_SUFFIXES = {".py", ".md", ".js", ".mjs", ".ts", ".yaml", ".yml", ".toml"}

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:[^>]*\s)?(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_CITATION = re.compile(
    r"\bcontract(?:'s)?\s+(?:sections?|§§?)\s*(\d+(?:\s*(?:,|and|&|or)\s*(?:§\s*)?\d+)*)",
    re.IGNORECASE,
)
_CONTRACT_SECTION = re.compile(r"^##\s+(\d+)\.\s+\S")


def tracked_files(root: Path = ROOT) -> list[Path]:
    """The files git tracks under ``root`` that exist in the working tree."""
    out = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True, cwd=root).stdout
    paths = [root / name for name in out.decode().split("\0") if name]
    return [path for path in paths if path.is_file()]


def read_text(path: Path) -> str | None:
    """The file's text, or ``None`` for a binary file."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` outside fenced code blocks, with inline code spans blanked out."""
    lines: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, _CODE_SPAN.sub("", line)))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: rendered text, lower-cased, punctuation dropped, spaces to ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML renders as nothing here
    text = text.replace("`", "").replace("*", "")
    text = unicodedata.normalize("NFC", text).lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in "-_ ")
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown file offers: heading slugs (``-1``, ``-2`` for repeats) and HTML ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        found.update(_HTML_ANCHOR.findall(line))
        match = _HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(text: str) -> list[tuple[int, str]]:
    """``(line number, target)`` of every link that is not a URL with a scheme (http:, mailto:, ...)."""
    links: list[tuple[int, str]] = []
    for number, line in prose_lines(text):
        targets = _INLINE_LINK.findall(line)
        ref = _REF_DEF.match(line)
        if ref:
            targets.append(ref.group(1))
        links.extend((number, target) for target in targets if not _SCHEME.match(target))
    return links


def broken_links(md_file: Path, root: Path, tracked: set[Path]) -> list[str]:
    """One line per link of ``md_file`` that does not resolve to a tracked file (and heading) under ``root``."""
    problems: list[str] = []
    text = md_file.read_text()
    where = md_file.relative_to(root)
    for number, target in relative_links(text):
        path_part, _, fragment = target.partition("#")
        if path_part:
            resolved = (md_file.parent / unquote(path_part)).resolve()
            if not resolved.is_relative_to(root.resolve()):
                problems.append(f"{where}:{number}: {target} points outside the repository")
                continue
            is_tracked_dir = resolved.is_dir() and any(path.is_relative_to(resolved) for path in tracked)
            if resolved not in tracked and not is_tracked_dir:
                problems.append(f"{where}:{number}: {target} is not a tracked file or folder")
                continue
        else:
            resolved = md_file.resolve()
        if fragment:
            if resolved.suffix.lower() != ".md" or resolved.is_dir():
                continue  # line anchors of code files (#L10) and folders are GitHub's, not ours to check
            if unquote(fragment).lower() not in anchors(resolved.read_text()):
                problems.append(
                    f"{where}:{number}: {target} names no heading of {resolved.relative_to(root.resolve())}"
                )
    return problems


def all_broken_links(root: Path = ROOT) -> list[str]:
    files = tracked_files(root)
    tracked = {path.resolve() for path in files}
    problems: list[str] = []
    for path in files:
        if path.suffix.lower() == ".md":
            problems.extend(broken_links(path, root, tracked))
    return problems


def contract_sections(text: str) -> set[int]:
    """The numbers of the contract's top-level sections (``## N. Title``)."""
    return {int(m.group(1)) for line in text.splitlines() if (m := _CONTRACT_SECTION.match(line))}


def cited_sections(text: str) -> list[tuple[int, int]]:
    """``(line number, section)`` for every "contract section N" style citation, line breaks included."""
    cited: list[tuple[int, int]] = []
    for match in _CITATION.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        cited.extend((line, int(number)) for number in re.findall(r"\d+", match.group(1)))
    return cited


def bad_citations(files: list[Path], sections: set[int], root: Path = ROOT) -> list[str]:
    problems: list[str] = []
    for path in files:
        if path.suffix.lower() not in CITING_SUFFIXES:
            continue
        text = read_text(path)
        if text is None:
            continue
        for line, number in cited_sections(text):
            if number not in sections:
                problems.append(
                    f"{path.relative_to(root)}:{line}: cites contract section {number}, which does not exist"
                )
    return problems


def outside_refs(files: list[Path], root: Path = ROOT) -> list[str]:
    problems: list[str] = []
    for path in files:
        relative = path.relative_to(root)
        if relative.parts[0] == ".ci":
            continue
        text = read_text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE_REF in line:
                problems.append(f"{relative}:{number}: {line.strip()[:100]}")
    return problems


# -- the repository ------------------------------------------------------------------------------------------


def test_every_relative_link_in_every_tracked_markdown_file_resolves() -> None:
    """GIVEN every tracked .md file WHEN its relative links are followed THEN each file and heading exists."""
    assert all_broken_links() == []


def test_no_tracked_file_points_outside_the_repository_at_the_shared_folder() -> None:
    """GIVEN every tracked file but CI's WHEN searched THEN none refers to the folder beside the repository."""
    assert outside_refs(tracked_files()) == []


def test_every_contract_citation_names_an_existing_section() -> None:
    """GIVEN docs/contract.md's sections WHEN code, docs and templates cite "contract section N" THEN N exists."""
    sections = contract_sections(CONTRACT.read_text())
    assert set(range(1, 9)) <= sections, "the spec's sections 1-8 keep their numbers"
    files = tracked_files()
    assert cited_sections("\n".join(read_text(p) or "" for p in files if p.suffix in CITING_SUFFIXES)), (
        "the code cites the contract by section; finding no citation at all means the pattern is wrong"
    )
    assert bad_citations(files, sections) == []


# -- the checker itself --------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A throw-away git repository with a few Markdown files, good and broken links side by side."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text(
        "# Guide\n\n## 4. HTTP API (the presign function)\n\n## `GET /files?key=KEY` → 200\n\n## Same\n\n## Same\n"
    )
    (tmp_path / "README.md").write_text(
        "# Top\n\n"
        "[ok](docs/guide.md) [ok heading](docs/guide.md#4-http-api-the-presign-function)\n"
        "[ok code heading](docs/guide.md#get-fileskeykey--200) [ok repeat](docs/guide.md#same-1)\n"
        "[ok self](#top) [ok folder](docs/) [ok url](https://example.com/missing.md)\n"
        "[missing file](docs/missing.md)\n"
        "[missing heading](docs/guide.md#no-such-heading)\n"
        "[outside](../elsewhere/SPEC.md)\n"
        "[untracked](notes.md)\n"
        "`[in code](docs/gone.md)`\n"
        "```\n[in a fence](docs/gone.md)\n```\n"
        "[ref]: docs/also-missing.md\n"
    )
    (tmp_path / "notes.md").write_text("# Notes\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "README.md", "docs/guide.md"], cwd=tmp_path, check=True)
    return tmp_path


def test_the_link_checker_reports_exactly_the_broken_links(repo: Path) -> None:
    """GIVEN a file with good and broken links WHEN checked THEN only the broken ones are reported, by line."""
    problems = all_broken_links(repo)
    assert [p.split(": ", 1)[0] for p in problems] == [
        "README.md:6",
        "README.md:7",
        "README.md:8",
        "README.md:9",
        "README.md:14",
    ]
    assert "docs/missing.md is not a tracked file" in problems[0]
    assert "names no heading of docs/guide.md" in problems[1]
    assert "points outside the repository" in problems[2]
    assert "notes.md is not a tracked file" in problems[3]


def test_github_slugs_follow_the_rendered_heading() -> None:
    """GIVEN headings with numbers, code, arrows and apostrophes WHEN slugged THEN GitHub's anchors come out."""
    assert github_slug("4. HTTP API (the presign function)") == "4-http-api-the-presign-function"
    assert github_slug("3. The app's deletion events") == "3-the-apps-deletion-events"
    assert github_slug("`POST /projects/{project_id}/uploads` → 201") == "post-projectsproject_iduploads--201"
    assert github_slug("Compatibility adapter: `scenestore.compat.R2Storage`") == (
        "compatibility-adapter-scenestorecompatr2storage"
    )


def test_the_citation_check_reports_a_section_that_does_not_exist(tmp_path: Path) -> None:
    """GIVEN citations of existing and missing sections, some across a line break WHEN checked THEN the missing."""
    source = tmp_path / "module.py"
    source.write_text(
        '"""Keys (contract section 1); see contract §4 and contract sections 6 and 7.\n'
        'Also the contract\nsection 12, which is not there."""\n'
    )
    assert cited_sections(source.read_text()) == [(1, 1), (1, 4), (1, 6), (1, 7), (2, 12)]
    assert bad_citations([source], {1, 2, 3, 4, 5, 6, 7, 8}, root=tmp_path) == [
        "module.py:2: cites contract " + "section 12, which does not exist"
    ]


def test_the_outside_reference_check_reports_a_mention_but_not_under_ci(tmp_path: Path) -> None:
    """GIVEN the shared folder named in a doc and in CI's script WHEN checked THEN only the doc is reported."""
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "run").write_text(f"cat {OUTSIDE_REF}/CONTRACT.md\n")
    (tmp_path / "README.md").write_text(f"# Top\n\nSee `{OUTSIDE_REF}/CONTRACT.md`.\n")
    files = [tmp_path / ".ci" / "run", tmp_path / "README.md"]
    assert outside_refs(files, root=tmp_path) == [f"README.md:3: See `{OUTSIDE_REF}/CONTRACT.md`."]
