#!/usr/bin/env bash
# README.md is assembled from the sections under docs/ so each area keeps its own source file.
# A part whose first line is an H1 has its headings (outside code fences) demoted one level.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
from pathlib import Path

parts = ["intro", "presign", "delete", "migrate", "frontend", "compat", "infra", "benchmarks", "benchmarks-delete"]
out = []
for name in parts:
    path = Path("docs") / f"{name}.md"
    if not path.exists():
        continue
    lines = path.read_text().splitlines()
    demote = name != "intro" and bool(lines) and lines[0].startswith("# ")
    fenced = False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif demote and not fenced and line.startswith("#"):
            line = "#" + line
        out.append(line)
    out.append("")
Path("README.md").write_text("\n".join(out).rstrip() + "\n")
PY
