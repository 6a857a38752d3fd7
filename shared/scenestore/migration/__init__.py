"""Crash-safe migration of legacy keys into the layout (contract section 6).

Entry points:

- :func:`migrate_batch` — one migrate-batch invocation (Lambda handler, CLI shard threads);
- :func:`plan_shards` — ``[{"gte", "lt"}, ...]`` covering every ``_id`` once (the state machine's Map input);
- :func:`verify_storage` — ``{"ok": bool, "missing": n, "legacy_referenced": n, ...}`` for a Choice state;
- :func:`run_migration` / :func:`rollback_run` — a whole run or a rollback from one process (the CLI).

Modules: ``ids`` (typed ``_id`` text and ranges), ``shards``, ``models`` (contract input/output, cursor),
``references`` (which fields move where), ``scan`` (reading a shard), ``inventory`` (source sizes),
``objects`` (S3 side), ``batch`` (the per-object pipeline over a batch), ``journal``, ``runs`` (run
documents and leases), ``engine``, ``driver``, ``rollback``, ``audit``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenestore.migration.audit import verify_storage
    from scenestore.migration.driver import RunOptions, run_migration
    from scenestore.migration.engine import EngineOptions, migrate_batch
    from scenestore.migration.models import BatchRequest, BatchResult, parse_request
    from scenestore.migration.rollback import rollback_run
    from scenestore.migration.shards import Shard, plan_shards

#: Where each entry point lives. They load on first use, so each Lambda handler imports only its own part of
#: the package at its cold start: migrate-plan the shards and run documents, migrate-verify the audit, neither
#: the engine (issue 23).
_ENTRY_POINTS: dict[str, str] = {
    "BatchRequest": "scenestore.migration.models",
    "BatchResult": "scenestore.migration.models",
    "EngineOptions": "scenestore.migration.engine",
    "RunOptions": "scenestore.migration.driver",
    "Shard": "scenestore.migration.shards",
    "migrate_batch": "scenestore.migration.engine",
    "parse_request": "scenestore.migration.models",
    "plan_shards": "scenestore.migration.shards",
    "rollback_run": "scenestore.migration.rollback",
    "run_migration": "scenestore.migration.driver",
    "verify_storage": "scenestore.migration.audit",
}


def __getattr__(name: str) -> Any:
    module = _ENTRY_POINTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ENTRY_POINTS})


__all__ = [
    "BatchRequest",
    "BatchResult",
    "EngineOptions",
    "RunOptions",
    "Shard",
    "migrate_batch",
    "parse_request",
    "plan_shards",
    "rollback_run",
    "run_migration",
    "verify_storage",
]
