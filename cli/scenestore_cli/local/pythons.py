"""Finding a Python of one exact minor version on this machine, for the tools that need another interpreter than
the dev environment's: LocalStack's peer S3 (3.13) and the Lambda build (3.12, the functions' runtime)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path


def find_python(version: str, override_var: str) -> str | None:
    """A Python ``version`` (``"3.12"``) that runs: the one ``override_var`` names, pyenv's, or ``python3.X`` on
    PATH. A pyenv shim on PATH may name a version that is installed but not selected, so each candidate is asked
    for its version rather than trusted by its name."""
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = [
        os.environ.get(override_var),
        *sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True),
        shutil.which(f"python{version}"),
    ]
    for candidate in candidates:
        if candidate and reports_version(candidate, version):
            return candidate
    return None


def reports_version(python: str, version: str) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == version
