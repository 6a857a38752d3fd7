"""The Lambda artifact and the locks behind it: ``make build`` (``sam build``) and ``make lock``.

**The SAM CLI** is the real one, ``aws-sam-cli`` pinned with hashes in ``requirements-sam.lock``, in a Python
3.12 virtualenv of its own (``.venv-sam``, built once; a changed lock re-installs it): its exact pins (boto3,
click) must not touch the project's. Python 3.12 is the functions' runtime: ``sam build`` needs ``python3.12``
on PATH (the functions' python3.12 builder checks it, and shared/Makefile compiles the layer's bytecode with
it). It is found the way the LocalStack peer finds Python 3.13 (``SCENESTORE_BUILD_PYTHON``, pyenv's,
``python3.12`` on PATH); when there is none, the build stops and says so.

**Builds**, without Docker (every dependency has a manylinux wheel for both architectures), ``--cached
--parallel``:

- ``build`` (arm64, template.yaml as it is) into ``.aws-sam/build``: what ``sam deploy`` uploads;
- ``build --arch x86_64`` into ``.aws-sam/x86_64/build``, from a copy of the template with the architecture
  replaced: the same artifact for this machine's CPU, which ``tests/test_artifact.py`` and
  ``bench/cold_start.py`` import.

**Locks** (uv: one universal resolution for the dev environment's Python 3.11 and the layer's 3.12, hashes
for every file of every pinned release):

- ``requirements.lock``: pyproject.toml's dependencies and its dev extra; the dev environment installs it;
- ``shared/requirements.txt``: the layer's share of that lock, its entries copied verbatim
  (``shared/requirements.in`` names the roots; a root marked ``# no-deps`` comes without its dependencies);
- ``requirements-sam.lock``: the SAM CLI.

``python -m scenestore_cli.build setup|build [--arch x86_64]|lock [--upgrade]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from scenestore_cli.local import pythons

REPO: Final = Path(__file__).resolve().parents[2]
TEMPLATE: Final = REPO / "template.yaml"
LOCK: Final = REPO / "requirements.lock"
SAM_LOCK: Final = REPO / "requirements-sam.lock"
LAYER_IN: Final = REPO / "shared" / "requirements.in"
LAYER_TXT: Final = REPO / "shared" / "requirements.txt"
SAM_VENV: Final = REPO / ".venv-sam"
#: The SAM CLI release ``make lock`` pins (with everything it needs) into requirements-sam.lock.
SAM_CLI: Final = "aws-sam-cli==1.170.0"
PYTHON_VERSION: Final = "3.12"
#: The dev environment's Python: the oldest the universal lock must hold for (pyproject's requires-python).
LOCK_PYTHON: Final = "3.11"
ARCHITECTURES: Final = ("arm64", "x86_64")
#: The template's architecture (the deployed one); the other is a test build for this machine.
DEPLOYED_ARCH: Final = "arm64"
INSTALL_TIMEOUT: Final = 900.0
BUILD_TIMEOUT: Final = 900.0
NO_DEPS_MARK: Final = "# no-deps"


class BuildError(Exception):
    """What stopped a build or an install, said so that the reader knows what to do."""


# -- Python 3.12 and uv ---------------------------------------------------------------------------------------------
def find_python() -> str | None:
    """A Python 3.12 that runs: ``SCENESTORE_BUILD_PYTHON``, pyenv's, or ``python3.12`` on PATH."""
    return pythons.find_python(PYTHON_VERSION, "SCENESTORE_BUILD_PYTHON")


def require_python() -> str:
    python = find_python()
    if python is None:
        raise BuildError(
            f"no Python {PYTHON_VERSION} found: the functions run on python{PYTHON_VERSION}, and sam build needs "
            f"it on PATH. Install it (pyenv install {PYTHON_VERSION}, or your distribution's "
            f"python{PYTHON_VERSION}), or point SCENESTORE_BUILD_PYTHON at one."
        )
    return python


def find_uv() -> str:
    """uv from the dev environment (requirements.lock pins it), else from PATH."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.is_file() else shutil.which("uv")
    if not found:
        raise BuildError("uv not found: it is a dev dependency (make install), or pip install uv")
    return found


def uv_environment() -> dict[str, str]:
    """uv never fetches an interpreter of its own: the build uses the Python 3.12 found here."""
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


# -- the SAM CLI's virtualenv ---------------------------------------------------------------------------------------
def _stamp(lock: Path) -> str:
    return hashlib.sha256(lock.read_bytes()).hexdigest()[:16]


def sam_executable(venv: Path) -> Path:
    return venv / "bin" / "sam"


@dataclass(frozen=True)
class SetupResult:
    installed: bool  #: False when the virtualenv was already built from this lock
    seconds: float


def install_sam(venv: Path | None = None, lock: Path | None = None) -> SetupResult:
    """Build ``venv`` (.venv-sam) with the SAM CLI from ``lock`` (requirements-sam.lock) unless it already is;
    raises :class:`BuildError`."""
    started = time.monotonic()
    venv, lock = venv or SAM_VENV, lock or SAM_LOCK
    stamp = venv / ".sam-stamp"
    if stamp.exists() and stamp.read_text().strip() == _stamp(lock) and sam_executable(venv).exists():
        return SetupResult(False, time.monotonic() - started)
    python = require_python()
    uv = find_uv()
    log = venv.parent / f"{venv.name}.install.log"
    steps = [
        [uv, "venv", "--quiet", "--clear", "--python", python, str(venv)],
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "--no-deps",
            "--require-hashes",
            "-r",
            str(lock),
        ],
    ]
    with log.open("w") as out:
        for argv in steps:
            _run(argv, out, log, uv_environment(), INSTALL_TIMEOUT)
    _python_link(venv, python)
    stamp.write_text(_stamp(lock) + "\n")
    return SetupResult(True, time.monotonic() - started)


def _python_link(venv: Path, python: str) -> None:
    """``venv/bin/python3.12``: what sam build and shared/Makefile call, first on their PATH."""
    link = venv / "bin" / f"python{PYTHON_VERSION}"
    if not link.exists():
        link.symlink_to("python")


def _run(argv: list[str], out: IO[str], log: Path, env: dict[str, str], timeout: float) -> None:
    try:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"`{' '.join(argv[:3])} ...` failed: {exc} (log: {log})") from exc
    if done.returncode != 0:
        raise BuildError(f"`{' '.join(argv[:3])} ...` exited {done.returncode}: {_last_line(log)} (log: {log})")


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


# -- sam build ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildPaths:
    template: Path  #: the template sam build reads
    build_dir: Path  #: its output: template.yaml plus a folder per function and layer
    cache_dir: Path


def build_paths(arch: str, root: Path = REPO) -> BuildPaths:
    if arch == DEPLOYED_ARCH:
        base = root / ".aws-sam"
        return BuildPaths(root / "template.yaml", base / "build", base / "cache")
    base = root / ".aws-sam" / arch
    return BuildPaths(base / "template.yaml", base / "build", base / "cache")


_ARCH_FIELDS = re.compile(rf"^(\s*(?:Architectures|CompatibleArchitectures): \[){DEPLOYED_ARCH}\]", re.MULTILINE)
_BUILD_ARCH = re.compile(rf"^(\s*BuildArchitecture: ){DEPLOYED_ARCH}$", re.MULTILINE)


def template_for(arch: str, text: str) -> str:
    """template.yaml with every architecture (functions, layer, layer build) set to ``arch``."""
    if arch == DEPLOYED_ARCH:
        return text
    text, functions = _ARCH_FIELDS.subn(rf"\g<1>{arch}]", text)
    text, layers = _BUILD_ARCH.subn(rf"\g<1>{arch}", text)
    if functions < 2 or layers < 1 or DEPLOYED_ARCH in text:
        raise BuildError(f"template.yaml names its architecture in a way the {arch} copy does not know")
    return text


def sam_build(arch: str = DEPLOYED_ARCH, *, root: Path = REPO, venv: Path | None = None) -> Path:
    """``sam build --cached --parallel`` for ``arch``; returns the build directory."""
    venv = venv or SAM_VENV
    if arch not in ARCHITECTURES:
        raise BuildError(f"architecture {arch!r}: one of {', '.join(ARCHITECTURES)}")
    install_sam(venv)
    paths = build_paths(arch, root)
    if arch != DEPLOYED_ARCH:
        paths.template.parent.mkdir(parents=True, exist_ok=True)
        paths.template.write_text(template_for(arch, (root / "template.yaml").read_text()))
    env = {
        **uv_environment(),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
        "SCENESTORE_LAYER_ARCH": arch,
        "UV": find_uv(),
    }
    argv = [str(sam_executable(venv)), "build", "--cached", "--parallel", "--template-file", str(paths.template)]
    argv += ["--base-dir", str(root), "--build-dir", str(paths.build_dir), "--cache-dir", str(paths.cache_dir)]
    log = paths.build_dir.parent / f"sam-build-{arch}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        _run(argv, out, log, env, BUILD_TIMEOUT)
    return paths.build_dir


@dataclass(frozen=True)
class BuiltFunction:
    name: str  #: the template's logical id
    code_dir: Path  #: /var/task on Lambda
    module: str
    attribute: str


@dataclass(frozen=True)
class Artifact:
    """What a build directory holds, as its own template.yaml names it."""

    build_dir: Path
    functions: tuple[BuiltFunction, ...]
    layer: Path  #: the layer's python/ folder: /opt/python on Lambda

    @classmethod
    def read(cls, build_dir: Path) -> Artifact:
        from cfnlint.decode import decode

        template, matches = decode(str(build_dir / "template.yaml"))
        if matches or template is None:
            raise BuildError(f"{build_dir / 'template.yaml'} does not parse: {matches}")
        functions, layers = [], []
        for name, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::Serverless::Function":
                module, attribute = props["Handler"].rsplit(".", 1)
                functions.append(BuiltFunction(name, build_dir / props["CodeUri"], module, attribute))
            elif resource["Type"] == "AWS::Serverless::LayerVersion":
                layers.append(build_dir / props["ContentUri"] / "python")
        if len(layers) != 1:
            raise BuildError(f"{build_dir}: expected one layer, found {len(layers)}")
        return cls(build_dir, tuple(sorted(functions, key=lambda f: f.name)), layers[0])


def build_all(architectures: Sequence[str]) -> dict[str, Path]:
    """``sam_build`` for each architecture, side by side (each waits on the network and disk as much as on a
    core); the SAM CLI is installed first, once."""
    from concurrent.futures import ThreadPoolExecutor

    install_sam()
    unique = list(dict.fromkeys(architectures))
    with ThreadPoolExecutor(max_workers=len(unique)) as pool:
        futures = {arch: pool.submit(sam_build, arch) for arch in unique}
        return {arch: future.result() for arch, future in futures.items()}


# -- locks ----------------------------------------------------------------------------------------------------------
def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockEntry:
    name: str  #: normalized
    version: str
    marker: str  #: "" when unconditional
    text: str  #: the requirement line and its hash lines, as the lock has them (no annotations)
    via: tuple[str, ...]  #: uv's annotation: who asked for it

    @property
    def hashes(self) -> tuple[str, ...]:
        return tuple(re.findall(r"--hash=(\S+)", self.text))


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def parse_lock(text: str) -> list[LockEntry]:
    """The entries of a ``uv pip compile --generate-hashes`` output: pin, marker, hashes and ``# via``."""
    entries: list[LockEntry] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.startswith("#"):
            continue
        match = _PIN.match(line)
        if match is None:
            raise ValueError(f"not an exact pin: {line!r}")
        body = [line]
        via: list[str] = []
        while i < len(lines) and lines[i].startswith(" "):
            stripped = lines[i].strip()
            if stripped.startswith("--hash="):
                body.append(lines[i])
            elif stripped.startswith("# via"):
                rest = stripped.removeprefix("# via").strip()
                via.extend([rest] if rest else [])
            elif stripped.startswith("#"):
                via.append(stripped.lstrip("#").strip())
            i += 1
        body[-1] = body[-1].rstrip(" \\")
        name, version, marker = match.group(1), match.group(2), (match.group(3) or "").strip()
        entries.append(LockEntry(normalize(name), version, marker, "\n".join(body), tuple(via)))
    return entries


@dataclass(frozen=True)
class LayerRoot:
    requirement: str  #: as written, without the comment
    name: str  #: normalized
    no_deps: bool


def layer_roots(text: str) -> list[LayerRoot]:
    roots = []
    for raw in text.splitlines():
        requirement = raw.split("#", 1)[0].strip()
        if requirement:
            name = normalize(re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0])
            roots.append(LayerRoot(requirement, name, NO_DEPS_MARK in raw))
    return roots


LAYER_HEADER: Final = """\
# The Lambda layer's pins: generated by `make lock` from requirements.lock (the one lock, which the dev
# environment installs too) for the roots in shared/requirements.in; do not edit. Every entry is the lock's own
# line, version and hashes; together they are the whole closure, so shared/Makefile installs each without its
# dependencies (chalice's CLI requirements are left out on purpose: shared/requirements.in says why).
"""


def layer_requirements(lock_text: str, roots_text: str, resolved: dict[str, str]) -> str:
    """shared/requirements.txt: the lock's entries for ``resolved`` (name -> version) plus the no-deps roots."""
    entries = parse_lock(lock_text)
    by_name: dict[str, list[LockEntry]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
    wanted = dict(resolved)
    for root in layer_roots(roots_text):
        if root.no_deps:
            pins = [e for e in by_name.get(root.name, []) if _applies_to_layer(e)]
            if len(pins) != 1:
                raise BuildError(f"requirements.lock has no single pin of {root.name} for the layer: run make lock")
            wanted.setdefault(root.name, pins[0].version)
    blocks = []
    for name in sorted(wanted):
        matching = [e for e in by_name.get(name, []) if e.version == wanted[name]]
        if not matching:
            raise BuildError(f"{name}=={wanted[name]} is not in requirements.lock: run make lock")
        blocks.append(matching[0].text)
    return LAYER_HEADER + "\n".join(blocks) + "\n"


def _applies_to_layer(entry: LockEntry) -> bool:
    from packaging.markers import Marker

    return not entry.marker or Marker(entry.marker).evaluate(layer_environment())


def layer_environment() -> dict[str, str]:
    """Marker values for Lambda's python3.12 (CPython on Linux); the machine does not change any marker here."""
    return {
        "python_version": PYTHON_VERSION,
        "python_full_version": f"{PYTHON_VERSION}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "aarch64",
        "extra": "",
    }


def _compile(uv: str, args: list[str], stdin: str | None = None) -> str:
    argv = [uv, "pip", "compile", "--quiet", *args]
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, env=uv_environment(), cwd=REPO, timeout=600, check=False
    )
    if done.returncode != 0:
        raise BuildError(f"`uv pip compile {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def lock(upgrade: bool = False) -> None:
    """Regenerate requirements.lock (kept pins unless ``upgrade``), requirements-sam.lock and
    shared/requirements.txt."""
    uv = find_uv()
    common = ["--generate-hashes", "--universal", "--custom-compile-command", "make lock"]
    common += ["--upgrade"] if upgrade else []
    _compile(uv, ["pyproject.toml", "--extra", "dev", "--python-version", LOCK_PYTHON, *common, "-o", LOCK.name])
    _compile(uv, ["-", "--python-version", PYTHON_VERSION, *common, "-o", SAM_LOCK.name], stdin=SAM_CLI + "\n")
    roots = [r.requirement for r in layer_roots(LAYER_IN.read_text()) if not r.no_deps]
    out = _compile(
        uv,
        [
            "-",
            "--constraint",
            LOCK.name,
            "--universal",
            "--python-version",
            PYTHON_VERSION,
            "--no-header",
            "--no-annotate",
            "--no-strip-markers",
        ],
        stdin="\n".join(roots) + "\n",
    )
    resolved = {e.name: e.version for e in parse_lock(out)}
    LAYER_TXT.write_text(layer_requirements(LOCK.read_text(), LAYER_IN.read_text(), resolved))


# -- command line ---------------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="build .venv-sam (the SAM CLI) unless it is built from this lock")
    build = commands.add_parser("build", help="sam build --cached --parallel, for arm64 (deploy) or x86_64 (tests)")
    build.add_argument(
        "--arch", choices=ARCHITECTURES, action="append", help=f"default {DEPLOYED_ARCH}; repeat: built side by side"
    )
    locker = commands.add_parser("lock", help="regenerate requirements.lock, requirements-sam.lock and the layer's")
    locker.add_argument("--upgrade", action="store_true", help="move every pin to the newest release allowed")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        if args.command == "setup":
            result = install_sam()
            print(f"SAM CLI: {'installed' if result.installed else 'up to date'} ({result.seconds:.1f}s)")
        elif args.command == "build":
            for arch, out in build_all(args.arch or [DEPLOYED_ARCH]).items():
                print(f"sam build ({arch}): {out.relative_to(REPO)} ({time.monotonic() - started:.1f}s)")
        else:
            lock(upgrade=args.upgrade)
            print(f"locked: {LOCK.name}, {SAM_LOCK.name}, {LAYER_TXT.relative_to(REPO)}")
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
