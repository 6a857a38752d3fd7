#!/usr/bin/env bash
# README.md is assembled from the sections under docs/ so each area keeps its own source file.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  cat docs/intro.md
  for part in presign delete migrate frontend compat infra benchmarks-delete; do
    if [ -f "docs/$part.md" ]; then
      printf '\n'
      # Demote each section one level so the README has a single H1.
      sed -e 's/^# /## /' "docs/$part.md"
    fi
  done
} > README.md
