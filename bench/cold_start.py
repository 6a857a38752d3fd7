"""Benchmark: each Lambda handler's cold import from the built artifact, not from the source tree (issue 23).

    make bench-cold-start                        # builds the x86_64 artifact first (cached), then runs this
    .venv/bin/python bench/cold_start.py --runs 5 [--json]

What a cold start does before the first request: a fresh python3.12 imports the handler module with the
function's folder (/var/task) and the layer (/opt/python) on ``sys.path``. Here that is the x86_64 build of the
same template (``make build-x86_64``: .aws-sam/x86_64/build), each handler in a fresh ``python3.12 -I -S -B``
with only those two folders before the standard library, timed around the import (the interpreter's own
start is measured apart). Every round imports every handler, rounds interleave the contenders, median of
``--runs`` per handler; the import's CPU time is printed beside its wall time, since on a shared 2-core
machine the wall time also counts waiting for a core (the load average is printed too). ``--realtime`` runs each
child under ``chrt -f 10`` (root only): a core is then the child's whenever it is runnable, which takes the other
processes' share of the machine out of the wall time (not their share of the caches).

Contenders:

- artifact: the layer as built (bytecode for python3.12, unchecked-hash, lazy handler imports);
- no bytecode: the same layer copied without its ``__pycache__`` folders, as ``sam build`` shipped it before
  (``-B``: nothing cached between runs, as on Lambda's read-only /opt);

and, for reference, the figures of issue 23's report, measured on the old artifact (no bytecode, eager
imports, tooling in the layer): 654-901 ms per handler.

Target (issue 23): every handler's artifact import, median of 5, at most 400 ms on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from scenestore_cli.build import Artifact, BuildError, build_paths, require_python

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 400.0
#: Issue 23's measurement of the artifact before it (per handler, import from the artifact alone, no bytecode).
BEFORE_MS = (654, 901)
_CHILD = """
import sys, time
code_dir, layer, module, attribute = sys.argv[1:5]
sys.path[:0] = [code_dir, layer]
wall, cpu = time.perf_counter(), time.process_time()
import importlib
getattr(importlib.import_module(module), attribute)
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def child_environment(home: Path) -> dict[str, str]:
    """What the import may read: the Powertools names the template sets, nothing of this shell's."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "POWERTOOLS_SERVICE_NAME": "scenestore",
        "POWERTOOLS_METRICS_NAMESPACE": "scenestore",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


#: Set by --realtime: the children run under SCHED_FIFO.
PREFIX: list[str] = []


def time_import(
    python: str, code_dir: Path, layer: Path, module: str, attribute: str, home: Path
) -> tuple[float, float]:
    argv = [*PREFIX, python, "-I", "-S", "-B", "-c", _CHILD, str(code_dir), str(layer), module, attribute]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=home, env=child_environment(home), check=False)
    if done.returncode != 0:
        raise SystemExit(f"{code_dir.name}: import failed\n{done.stderr[-3000:]}")
    wall, cpu = (float(x) for x in done.stdout.split())
    return wall * 1000, cpu * 1000


def interpreter_start(python: str, home: Path, runs: int) -> float:
    import time

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        argv = [*PREFIX, python, "-I", "-S", "-B", "-c", "pass"]
        subprocess.run(argv, check=True, env=child_environment(home), cwd=home)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def without_bytecode(layer: Path, into: Path) -> Path:
    shutil.copytree(layer, into, ignore=shutil.ignore_patterns("__pycache__"), symlinks=True)
    return into


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="imports per handler and contender (default 5)")
    parser.add_argument("--build-dir", type=Path, default=build_paths("x86_64").build_dir)
    parser.add_argument("--no-baseline", action="store_true", help="skip the no-bytecode contender")
    parser.add_argument("--realtime", action="store_true", help="run each child under chrt -f 10 (root only)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args(argv)
    if args.realtime:
        PREFIX[:] = ["chrt", "-f", "10"]
    if not (args.build_dir / "template.yaml").is_file():
        raise SystemExit(f"{args.build_dir} is not built: make build-x86_64")
    try:
        python = require_python()
    except BuildError as exc:
        raise SystemExit(str(exc)) from None
    artifact = Artifact.read(args.build_dir)

    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as tmp:
        home = Path(tmp)
        layers = {"artifact": artifact.layer}
        if not args.no_baseline:
            layers["no bytecode"] = without_bytecode(artifact.layer, home / "layer-source-only")
        for fn in artifact.functions:  # one untimed import each: the disk cache, as on a warm Lambda host
            for layer in layers.values():
                time_import(python, fn.code_dir, layer, fn.module, fn.attribute, home)
        samples: dict[str, dict[str, list[tuple[float, float]]]] = {
            name: {fn.name: [] for fn in artifact.functions} for name in layers
        }
        for _ in range(args.runs):
            for fn in artifact.functions:
                for name, layer in layers.items():
                    samples[name][fn.name].append(
                        time_import(python, fn.code_dir, layer, fn.module, fn.attribute, home)
                    )
        start_ms = interpreter_start(python, home, args.runs)

    medians = {
        name: {
            fn: {
                "wall_ms": round(statistics.median(s[0] for s in runs), 1),
                "cpu_ms": round(statistics.median(s[1] for s in runs), 1),
            }
            for fn, runs in by_fn.items()
        }
        for name, by_fn in samples.items()
    }
    worst = max(row["wall_ms"] for row in medians["artifact"].values())
    result = {
        "build_dir": str(args.build_dir),
        "python": python,
        "runs": args.runs,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "realtime": args.realtime,
        "interpreter_start_ms": round(start_ms, 1),
        "import_ms": medians,
        "before_issue_23_ms": list(BEFORE_MS),
        "target_ms": TARGET_MS,
        "met": worst <= TARGET_MS,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"cold import from {args.build_dir.relative_to(ROOT)}, median of {args.runs} fresh {python} -I -S -B")
    realtime = ", children under chrt -f 10" if args.realtime else ""
    print(f"(interpreter start alone {start_ms:.0f} ms, not included; load average {result['load_average']}{realtime})")
    header = f"{'handler':<24} {'artifact wall':>14} {'cpu':>7}"
    if "no bytecode" in medians:
        header += f" {'no bytecode wall':>17} {'cpu':>7}"
    print(header + f" {'before (issue 23)':>18}")
    for fn in artifact.functions:
        row = medians["artifact"][fn.name]
        line = f"{fn.name:<24} {row['wall_ms']:>11.0f} ms {row['cpu_ms']:>4.0f} ms"
        if "no bytecode" in medians:
            old = medians["no bytecode"][fn.name]
            line += f" {old['wall_ms']:>14.0f} ms {old['cpu_ms']:>4.0f} ms"
        print(line + f" {f'{BEFORE_MS[0]}-{BEFORE_MS[1]} ms':>18}")
    verdict = "met" if result["met"] else "NOT met"
    print(f"slowest handler {worst:.0f} ms (target <= {TARGET_MS:.0f} ms on a quiet machine: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
