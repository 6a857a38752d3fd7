"""The locks (issue 23): one lock for the dev environment and the Lambda layer, pinned with hashes, in use.

- ``requirements.lock`` is what ``make lock`` (uv, universal) makes of pyproject.toml: its roots are exactly
  pyproject's requirements, and every pin lies within pyproject's range, for the dev environment's Python and
  for the layer's 3.12. A range changed in pyproject.toml without ``make lock`` fails here.
- ``shared/requirements.txt`` (the layer's pins) is cut from it: each entry is the lock's own, hashes and all,
  and together they are exactly the closure of ``shared/requirements.in`` (a ``# no-deps`` root alone).
- ``shared/requirements.in`` states the same ranges as pyproject.toml's ``dependencies``.
- The dev environment runs what the lock pins.
- ``requirements-sam.lock`` pins the SAM CLI release ``scenestore_cli.build`` names.

These read files and the installed metadata only (no network); the built layer itself is checked by
``tests/test_artifact.py``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from scenestore_cli.build import (
    LAYER_IN,
    LAYER_TXT,
    LOCK,
    PYTHON_VERSION,
    SAM_CLI,
    SAM_LOCK,
    LockEntry,
    layer_environment,
    layer_roots,
    normalize,
    parse_lock,
)

from tests.support.infra import ROOT

PYPROJECT = ROOT / "pyproject.toml"
ROOT_ANNOTATION = "scenestore (pyproject.toml)"


def pyproject_requirements(text: str) -> list[Requirement]:
    project = tomllib.loads(text)["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def environments() -> dict[str, dict[str, str]]:
    """The two interpreters the lock serves: this dev environment's and the layer's (Lambda's python3.12)."""
    return {"dev": {**default_environment(), "extra": ""}, "layer": layer_environment()}


def applies(entry: LockEntry, environment: dict[str, str]) -> bool:
    return not entry.marker or Marker(entry.marker).evaluate(environment)


def lock_disagreements(pyproject_text: str, lock_text: str) -> list[str]:
    """Every way the lock fails pyproject.toml: a requirement it does not pin, a pin out of range, a root it
    keeps that pyproject no longer names, an extra's requirement it lacks, an entry without hashes."""
    entries = parse_lock(lock_text)
    by_name: dict[str, list[LockEntry]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
    problems = [f"{e.name}=={e.version}: no hashes" for e in entries if not e.hashes]
    wanted = pyproject_requirements(pyproject_text)
    for requirement in wanted:
        name = normalize(requirement.name)
        for label, environment in environments().items():
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            pins = [e for e in by_name.get(name, []) if applies(e, environment)]
            if len(pins) != 1:
                problems.append(f"{requirement}: {len(pins)} pins for the {label} environment (want 1)")
            elif not requirement.specifier.contains(pins[0].version, prereleases=True):
                problems.append(f"{requirement}: the lock pins {pins[0].version} ({label})")
        for extra in sorted(requirement.extras):
            problems += [f"{requirement}: {sub} is not locked" for sub in _extra_requirements(name, extra, by_name)]
    roots = {e.name for e in entries if ROOT_ANNOTATION in e.via}
    stale = roots - {normalize(r.name) for r in wanted}
    problems += [f"{name}: locked as a root, but pyproject.toml no longer asks for it" for name in sorted(stale)]
    return problems


def _extra_requirements(name: str, extra: str, by_name: dict[str, list[LockEntry]]) -> Iterable[str]:
    """What ``name[extra]`` adds, by the installed metadata of the locked release, that the lock lacks."""
    try:
        requires = metadata.distribution(name).requires or []
    except metadata.PackageNotFoundError:
        return [f"{name} (not installed, cannot read its extras)"]
    missing = []
    for line in requires:
        sub = Requirement(line)
        marker = sub.marker
        only_with_extra = (
            marker is not None
            and marker.evaluate({**default_environment(), "extra": extra})
            and not marker.evaluate({**default_environment(), "extra": ""})
        )
        if only_with_extra and normalize(sub.name) not in by_name:
            missing.append(str(sub))
    return missing


def layer_closure(roots_text: str) -> set[str]:
    """The distributions the layer needs, by installed metadata, markers evaluated for Lambda's python3.12."""
    environment = layer_environment()
    names: set[str] = set()
    todo: list[tuple[Requirement, bool]] = [
        (Requirement(root.requirement), root.no_deps) for root in layer_roots(roots_text)
    ]
    seen: set[str] = set()
    while todo:
        requirement, no_deps = todo.pop()
        name = normalize(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        names.add(name)
        if no_deps or key in seen:
            continue
        seen.add(key)
        for line in metadata.distribution(name).requires or []:
            sub = Requirement(line)
            extras = requirement.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({**environment, "extra": e}) for e in extras):
                todo.append((sub, False))
    return names


# -- requirements.lock against pyproject.toml ---------------------------------------------------------------------


def test_the_lock_pins_every_requirement_of_pyproject_within_its_range_and_nothing_stale() -> None:
    assert lock_disagreements(PYPROJECT.read_text(), LOCK.read_text()) == [], "run `make lock`"


def test_the_check_notices_a_range_the_lock_does_not_meet_and_a_requirement_it_lacks() -> None:
    text = PYPROJECT.read_text()
    assert '"boto3>=1.36"' in text and '"pytest>=8"' in text
    changed = text.replace('"boto3>=1.36"', '"boto3>=99"').replace('"pytest>=8"', '"pytest>=8",\n    "left-pad>=1"')
    problems = lock_disagreements(changed, LOCK.read_text())
    assert any(p.startswith("boto3>=99: the lock pins") for p in problems), problems
    assert any(p.startswith("left-pad>=1: 0 pins") for p in problems), problems


def test_the_check_notices_a_root_pyproject_dropped() -> None:
    text = PYPROJECT.read_text()
    dropped = text.replace('    "tqdm>=4.66",\n', "")
    assert dropped != text
    assert "tqdm: locked as a root, but pyproject.toml no longer asks for it" in lock_disagreements(
        dropped, LOCK.read_text()
    )


def test_every_lock_entry_is_an_exact_pin_with_hashes() -> None:
    for lock in (LOCK, SAM_LOCK, LAYER_TXT):
        entries = parse_lock(lock.read_text())  # raises on anything but name==version
        assert entries, lock
        assert [e.name for e in entries if not e.hashes] == [], f"{lock.name}: entries without hashes"


def test_the_lock_says_how_to_refresh_it() -> None:
    for lock in (LOCK, SAM_LOCK):
        assert "#    make lock" in lock.read_text().splitlines()[1], f"{lock.name}: generated by make lock"
    assert "make lock" in LAYER_TXT.read_text().splitlines()[0]


# -- the layer's pins ---------------------------------------------------------------------------------------------


def test_the_layer_pins_are_the_lock_own_entries_hashes_and_all() -> None:
    lock = {entry.text for entry in parse_lock(LOCK.read_text())}
    foreign = [e.name for e in parse_lock(LAYER_TXT.read_text()) if e.text not in lock]
    assert foreign == [], "shared/requirements.txt is generated from requirements.lock: run `make lock`"


def test_the_layer_pins_are_exactly_the_closure_of_its_roots() -> None:
    """Nothing missing (the layer installs each pin without its dependencies) and nothing extra; chalice's
    install-time requirements (pip, setuptools, wheel, inquirer, click, ...) stay out."""
    pinned = {e.name for e in parse_lock(LAYER_TXT.read_text())}
    assert pinned == layer_closure(LAYER_IN.read_text())
    assert {"chalice", "boto3", "pymongo", "pydantic-settings"} <= pinned
    assert not pinned & {"pip", "setuptools", "wheel", "inquirer", "blessed", "readchar", "click", "pyyaml"}


def test_the_layer_roots_state_pyproject_ranges() -> None:
    declared_list = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    dependencies = {normalize(r.name): r for r in map(Requirement, declared_list)}
    for root in layer_roots(LAYER_IN.read_text()):
        requirement = Requirement(root.requirement)
        declared = dependencies.get(root.name)
        assert declared is not None, f"{root.requirement}: not in pyproject.toml's dependencies"
        assert (requirement.specifier, requirement.extras) == (declared.specifier, declared.extras), root


def test_chalice_alone_is_marked_no_deps_and_its_runtime_needs_none_of_its_requirements() -> None:
    """What makes ``# no-deps`` safe: chalice's runtime modules import only the standard library."""
    import ast

    assert [r.name for r in layer_roots(LAYER_IN.read_text()) if r.no_deps] == ["chalice"]
    package = Path(metadata.distribution("chalice").locate_file("chalice"))
    for module in ("__init__.py", "app.py"):
        tree = ast.parse((package / module).read_text())
        for node in tree.body:  # module level: what importing chalice runs
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "chalice", f"chalice/{module} imports {name}"


# -- the environments that use it ---------------------------------------------------------------------------------


def test_the_dev_environment_runs_the_locked_versions() -> None:
    """``make install`` installs requirements.lock; a pin changed without reinstalling fails here."""
    environment = environments()["dev"]
    wrong = {}
    for entry in parse_lock(LOCK.read_text()):
        if not applies(entry, environment):
            continue
        try:
            installed = metadata.version(entry.name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if normalize(installed) != normalize(entry.version):
            wrong[entry.name] = f"{installed} (locked {entry.version})"
    assert wrong == {}, "the dev environment is not the lock's: make install (or rm .venv/.installed)"


def test_the_sam_lock_pins_the_sam_cli_release_the_build_names() -> None:
    name, version = SAM_CLI.split("==")
    pins = {e.name: e.version for e in parse_lock(SAM_LOCK.read_text())}
    assert pins.get(name) == version
    assert PYTHON_VERSION == "3.12"


@pytest.mark.parametrize("path", [LOCK, SAM_LOCK, LAYER_TXT, LAYER_IN])
def test_the_lock_files_are_tracked(path: Path) -> None:
    import subprocess

    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(path)], cwd=ROOT, capture_output=True)
    assert tracked.returncode == 0, f"{path.relative_to(ROOT)} must be committed"
