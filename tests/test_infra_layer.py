"""The Lambda layer ships only what the deployed functions run (docs/contract.md, "Repository layout").

The layer is ``SharedLayer``'s ``ContentUri`` as the template names it. The operator CLI, the local stack, its
demo page, the local event runner and bootstrap live in ``cli/scenestore_cli`` (installed by ``pip install -e .``,
never shipped): a file of theirs, or an import of a dev-only package, found in the layer fails here.

These read the layer's source; what ``sam build`` makes of it (shared/Makefile: the pinned wheels, bytecode, no
build files) is checked on the built artifact by ``tests/test_artifact.py``.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from tests.support.infra import ROOT, resources

LAYER_DIR = ROOT / resources()["SharedLayer"]["Properties"]["ContentUri"]
#: Packages only the CLI and the local stack use; the layer's requirements.txt does not install them.
DEV_ONLY_IMPORTS = {"click", "tqdm", "scenestore_cli", "moto", "secantusdb", "werkzeug", "pytest"}
#: Module names that mean dev-only code, wherever they would appear in the layer.
DEV_ONLY_NAMES = {"cli", "local", "localstack", "demo", "demo_page", "event_runner", "bootstrap", "serve", "usage"}
#: What the layer's source may hold besides Python modules: its build (shared/Makefile) and its requirements
#: (the roots, and the pins ``make lock`` cuts from requirements.lock). The build ships none of them.
ALLOWED_NON_PYTHON = {"Makefile", "requirements.in", "requirements.txt"}


def layer_files() -> list[Path]:
    """The tracked files under the layer directory: what ``sam build`` would package."""
    out = subprocess.run(
        ["git", "ls-files", "--", str(LAYER_DIR.relative_to(ROOT))],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return [ROOT / line for line in out.splitlines() if line]


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_layer_is_the_shared_directory_and_holds_the_scenestore_package() -> None:
    files = layer_files()
    assert LAYER_DIR == ROOT / "shared"
    assert LAYER_DIR / "scenestore" / "__init__.py" in files
    assert {LAYER_DIR / name for name in ALLOWED_NON_PYTHON} <= set(files)


def test_the_layer_holds_no_dev_only_module_or_asset() -> None:
    offenders = []
    for path in layer_files():
        relative = path.relative_to(LAYER_DIR)
        if path.suffix != ".py" and relative.name not in ALLOWED_NON_PYTHON:
            offenders.append(f"{relative}: not a Python module (demo page or other asset?)")
        names = {part.removesuffix(".py") for part in relative.parts}
        if names & DEV_ONLY_NAMES:
            offenders.append(f"{relative}: dev-only module {sorted(names & DEV_ONLY_NAMES)}")
    assert offenders == []


def test_no_layer_module_imports_a_dev_only_package() -> None:
    offenders = {
        str(path.relative_to(LAYER_DIR)): sorted(top_level_imports(path) & DEV_ONLY_IMPORTS)
        for path in layer_files()
        if path.suffix == ".py" and top_level_imports(path) & DEV_ONLY_IMPORTS
    }
    assert offenders == {}


def test_the_check_would_notice_the_cli_moving_back_into_the_layer(tmp_path: Path) -> None:
    """The dev-only detector is not vacuous: the CLI's own entry module trips it."""
    entry = ROOT / "cli" / "scenestore_cli" / "main.py"
    assert top_level_imports(entry) & DEV_ONLY_IMPORTS
    assert {"local", "event_runner", "bootstrap"} <= DEV_ONLY_NAMES
    assert (ROOT / "cli" / "scenestore_cli" / "local" / "demo_page" / "index.html").is_file()
