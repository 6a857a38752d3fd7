"""The Lambda artifact as ``sam build`` makes it, not the source tree (issue 23).

``make test-artifact`` builds both (``make build``: arm64, the deployed one, in .aws-sam/build; ``make
build-x86_64``: the same template for this machine's CPU, in .aws-sam/x86_64/build) and runs this; elsewhere
these tests skip when the build is missing. What they hold the artifact to:

- each of the template's handlers imports from its function folder and the layer alone, in a fresh
  ``python3.12 -I -S -B``; every module it loads comes from there or the standard library, the layer's from
  its bytecode; nothing dev-only loads, and neither do the clients the first request loads itself (boto3,
  pymongo, PyJWT) nor the parts of the package another handler runs;
- the layer holds exactly the locked distributions (shared/requirements.txt), at their versions, plus the
  scenestore package: no packaging or CLI tools, no requirements file, no dev-only code; at most 60 MiB;
- its bytecode is python3.12's, hash-based and unchecked, for every module (valid whatever times Lambda's
  unzip gives the files);
- its native code is for the build's architecture;
- botocore keeps the models of exactly the services the code calls, and clients for them build.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
from scenestore_cli.build import LAYER_TXT, Artifact, build_paths, find_python, normalize, parse_lock

from tests.support.infra import ROOT, function_entry

pytestmark = pytest.mark.artifact

MAX_LAYER_BYTES = 60 * 2**20
#: Never in the layer, never loaded by a handler: the CLI, the tests and the dev-only servers and tools.
DEV_ONLY = {"scenestore_cli", "tests", "moto", "secantusdb", "localstack", "playwright", "pytest", "_pytest"}
#: Packaging and CLI tools (chalice's install requirements among them) and the requirements files.
TOOLS = {
    "pip", "setuptools", "pkg_resources", "_distutils_hack", "wheel", "inquirer", "blessed", "readchar", "editor",
    "runs", "xmod", "jinxed", "wcwidth", "click", "yaml", "_yaml", "bin",
}  # fmt: skip
BUILD_FILES = re.compile(r"^(requirements.*\.(txt|in)|Makefile)$")
#: Loaded by the first request that needs them, never at import: what every handler may not import.
FIRST_USE = {"boto3", "s3transfer", "urllib3", "pymongo", "jwt", "cryptography"}
#: Standard modules in the same case (the listing parser and the DeleteObjects body of scenestore.prefix_delete).
FIRST_USE_STDLIB = {"xml.etree.ElementTree", "xml.sax.saxutils", "urllib.request"}
#: The parts of the package a handler's first request does not run.
NOT_AT_IMPORT = {
    "DeleteProjectFunction": {"scenestore.migration", "scenestore.http_api"},
    "DeleteSceneFunction": {"scenestore.migration", "scenestore.http_api"},
    "MigratePlanFunction": {
        "scenestore.migration.engine", "scenestore.migration.batch", "scenestore.migration.driver",
        "scenestore.migration.rollback", "scenestore.migration.audit", "scenestore.cleanup",
    },
    "MigrateBatchFunction": {
        "scenestore.migration.driver", "scenestore.migration.rollback", "scenestore.migration.audit",
        "scenestore.cleanup",
    },
    "MigrateVerifyFunction": {
        "scenestore.migration.engine", "scenestore.migration.batch", "scenestore.migration.driver",
        "scenestore.migration.rollback", "scenestore.cleanup",
    },
    "PresignFunction": {"scenestore.migration", "scenestore.cleanup", "scenestore.events"},
}  # fmt: skip
ELF_MACHINE = {"x86_64": 62, "arm64": 183}  # e_machine: EM_X86_64, EM_AARCH64


@cache
def artifact(arch: str) -> Artifact:
    build_dir = build_paths(arch).build_dir
    if not (build_dir / "template.yaml").is_file():
        _missing(f"{build_dir.relative_to(ROOT)} is not built: make test-artifact builds it")
    return Artifact.read(build_dir)


@cache
def python312() -> str:
    python = find_python()
    if python is None:
        _missing("no python3.12 here: make build says how to get one")
    assert python is not None
    return python


def _missing(reason: str) -> None:
    if os.environ.get("SCENESTORE_ARTIFACT_REQUIRED"):
        pytest.fail(reason)
    pytest.skip(reason)


def child_environment(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "POWERTOOLS_METRICS_NAMESPACE": "scenestore"}


def run_child(script: str, *args: str, home: Path, extra_env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    argv = [python312(), "-I", "-S", "-B", "-c", script, *args]
    env = {**child_environment(home), **(extra_env or {})}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=home, env=env, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[type-arg]
    return result


# -- each handler, from the artifact alone -------------------------------------------------------------------------

_IMPORT = """
import importlib, json, sys
code_dir, layer, module, attribute = sys.argv[1:5]
stdlib = list(sys.path)                     # -I -S: the standard library's folders only
sys.path[:0] = [code_dir, layer]            # /var/task, /opt/python
handler = getattr(importlib.import_module(module), attribute)
modules = {}
for name, mod in list(sys.modules.items()):
    spec = getattr(mod, "__spec__", None)
    modules[name] = [getattr(mod, "__file__", None), getattr(spec, "cached", None) if spec else None]
print(json.dumps({"callable": callable(handler), "stdlib": stdlib, "modules": modules}))
"""


def _under(path: str, roots: list[Path]) -> bool:
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(root) for root in roots)


@pytest.mark.parametrize("logical", sorted(NOT_AT_IMPORT))
def test_each_handler_imports_from_its_folder_and_the_layer_alone(logical: str, tmp_path: Path) -> None:
    built = artifact("x86_64")
    functions = {f.name: f for f in built.functions}
    assert set(functions) == set(NOT_AT_IMPORT), "a handler was added or renamed: list what it may not import"
    fn = functions[logical]
    found = run_child(_IMPORT, str(fn.code_dir), str(built.layer), fn.module, fn.attribute, home=tmp_path)
    assert found["callable"]
    code_dir, layer = fn.code_dir.resolve(), built.layer.resolve()
    stdlib = [Path(p).resolve() for p in found["stdlib"] if p and Path(p).exists()]
    foreign, uncompiled = [], []
    for name, (file, cached) in found["modules"].items():
        if file is None:
            continue  # built in
        if "-packages" in file or not _under(file, [code_dir, layer, *stdlib]):
            foreign.append(f"{name}: {file}")
        elif _under(file, [layer]) and file.endswith(".py") and not (cached and Path(cached).is_file()):
            uncompiled.append(name)
    assert foreign == [], "loaded from outside the function folder, the layer and the standard library"
    assert uncompiled == [], "layer modules imported without bytecode"
    assert found["modules"][fn.module][0] is not None and _under(found["modules"][fn.module][0], [code_dir])
    loaded = set(found["modules"])
    tops = {name.split(".")[0] for name in loaded}
    assert tops & DEV_ONLY == set()
    assert tops & FIRST_USE == set(), "the first request loads these, not the import (cold start)"
    assert loaded & FIRST_USE_STDLIB == set(), "the first request loads these, not the import (cold start)"
    early = {m for m in loaded for part in NOT_AT_IMPORT[logical] if m == part or m.startswith(part + ".")}
    assert early == set(), f"{logical} imports what its first request does not run"


# -- the layer ---------------------------------------------------------------------------------------------------


def layer_files(arch: str) -> list[Path]:
    return sorted(p for p in artifact(arch).layer.rglob("*") if p.is_file() or p.is_symlink())


def locked() -> dict[str, str]:
    return {e.name: e.version for e in parse_lock(LAYER_TXT.read_text())}


def distributions(layer: Path) -> dict[str, str]:
    found = {}
    for info in layer.glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        found[normalize(name)] = version
    return found


@pytest.mark.parametrize("arch", sorted(ELF_MACHINE))
def test_the_layer_holds_the_locked_distributions_and_scenestore_nothing_else(arch: str) -> None:
    layer = artifact(arch).layer
    assert distributions(layer) == locked()
    owned = {"scenestore", "__pycache__"}
    for info in layer.glob("*.dist-info"):
        owned.add(info.name)
        for line in (info / "RECORD").read_text().splitlines():
            owned.add(line.split(",")[0].split("/")[0])
    assert sorted(p.name for p in layer.iterdir() if p.name not in owned) == []
    names = {p.name for p in layer.iterdir()} | {p.name.removesuffix(".py") for p in layer.iterdir()}
    assert names & (TOOLS | DEV_ONLY) == set()
    ours = [*layer.iterdir(), *(layer / "scenestore").rglob("*")]  # chalice's project templates are its own
    assert [str(p) for p in ours if BUILD_FILES.match(p.name)] == []


@pytest.mark.parametrize("arch", sorted(ELF_MACHINE))
def test_the_layer_scenestore_is_the_source_package_without_dev_only_code(arch: str) -> None:
    layer = artifact(arch).layer
    source = ROOT / "shared" / "scenestore"
    shipped = {p.relative_to(layer / "scenestore") for p in (layer / "scenestore").rglob("*.py")}
    tracked = subprocess.run(
        ["git", "ls-files", "--", "*.py"], cwd=source, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {Path(p) for p in tracked} <= shipped, "a tracked module of shared/scenestore is missing"
    for path in shipped:
        tree = ast.parse((layer / "scenestore" / path).read_text())
        imported = {
            (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom) and getattr(node, "level", 0) == 0
            for alias in (node.names if isinstance(node, ast.Import) else [node])
        }
        assert imported & DEV_ONLY == set(), path


@pytest.mark.parametrize("arch", sorted(ELF_MACHINE))
def test_the_layer_is_at_most_60_mib_unzipped(arch: str) -> None:
    size = sum(p.lstat().st_size for p in layer_files(arch))
    print(f"{arch} layer: {size / 2**20:.1f} MiB")
    assert size <= MAX_LAYER_BYTES, f"{size / 2**20:.1f} MiB"


_BYTECODE = """
import importlib.util, json, pathlib, sys
layer = pathlib.Path(sys.argv[1])
problems, count = [], 0
for source in layer.rglob("*.py"):
    count += 1
    cached = pathlib.Path(importlib.util.cache_from_source(str(source)))
    if not cached.is_file():
        problems.append(f"{source}: no bytecode")
        continue
    header = cached.read_bytes()[:16]
    if header[:4] != importlib.util.MAGIC_NUMBER:
        problems.append(f"{cached}: not python3.12's bytecode")
    elif int.from_bytes(header[4:8], "little") != 0b01:
        problems.append(f"{cached}: not unchecked-hash (flags {header[4:8].hex()})")
    elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
        problems.append(f"{cached}: compiled from another source")
stray = [str(p) for p in layer.rglob("*.pyc") if ".cpython-312." not in p.name or ".opt-" in p.name]
print(json.dumps({"modules": count, "problems": problems[:20], "stray": stray[:20]}))
"""


@pytest.mark.parametrize("arch", sorted(ELF_MACHINE))
def test_every_layer_module_has_unchecked_hash_bytecode_for_python312(arch: str, tmp_path: Path) -> None:
    found = run_child(_BYTECODE, str(artifact(arch).layer), home=tmp_path)
    assert found["modules"] > 1000
    assert found["problems"] == []
    assert found["stray"] == []


@pytest.mark.parametrize("arch", sorted(ELF_MACHINE))
def test_native_code_is_for_the_build_architecture(arch: str) -> None:
    machines = {}
    for path in layer_files(arch):
        if ".so" in path.suffixes:
            head = path.read_bytes()[:20]
            assert head[:4] == b"\x7fELF", path
            machines[path.name] = int.from_bytes(head[18:20], "little")
    assert machines, "no native code found (pydantic-core, cryptography)"
    assert {name: m for name, m in machines.items() if m != ELF_MACHINE[arch]} == {}


def test_the_deployed_build_is_arm64_as_the_template_says() -> None:
    built = (artifact("arm64").build_dir / "template.yaml").read_text()
    assert "x86_64" not in built
    assert re.search(r"BuildArchitecture: arm64", built)


# -- AWS service models --------------------------------------------------------------------------------------------


def kept_services() -> set[str]:
    makefile = (ROOT / "shared" / "Makefile").read_text()
    match = re.search(r"^AWS_SERVICES := (.+)$", makefile, re.MULTILINE)
    assert match
    return set(match.group(1).split())


def services_called() -> set[str]:
    """Service names the shipped code passes to ``.client(...)``, plus Secrets Manager, which scenestore.secrets
    reaches through Powertools' parameters utility."""
    found = {"secretsmanager"}
    sources = [*(ROOT / "shared" / "scenestore").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "client"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    assert "SecretsProvider" in (ROOT / "shared" / "scenestore" / "secrets.py").read_text()
    return found


_CLIENTS = """
import json, sys
sys.path[:0] = [sys.argv[1]]
import boto3
session = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
made = {name: type(session.client(name)).__name__ for name in sys.argv[2:]}
from aws_lambda_powertools.utilities.parameters import SecretsProvider
SecretsProvider()
from scenestore.clients import make_s3_client
from scenestore.settings import Settings
make_s3_client(Settings())
print(json.dumps(made))
"""


def test_botocore_keeps_the_models_of_exactly_the_services_the_code_calls(tmp_path: Path) -> None:
    built = artifact("x86_64")
    services = kept_services()
    assert services_called() == services
    for package in ("botocore", "boto3"):
        data = built.layer / package / "data"
        assert {p.name for p in data.iterdir() if p.is_dir()} <= services, package
    made = run_child(
        _CLIENTS,
        str(built.layer),
        *sorted(services),
        home=tmp_path,
        extra_env={"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
    )
    assert set(made) == services


def test_function_folders_hold_their_tracked_source_files_only() -> None:
    for fn in artifact("x86_64").functions:
        source = function_entry(fn.name)[0]
        tracked = subprocess.run(["git", "ls-files"], cwd=source, capture_output=True, text=True, check=True)
        shipped = {str(p.relative_to(fn.code_dir)) for p in fn.code_dir.rglob("*") if p.is_file()}
        assert shipped == set(tracked.stdout.split()), fn.name
