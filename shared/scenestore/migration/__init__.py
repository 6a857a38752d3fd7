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

from scenestore.migration.audit import verify_storage
from scenestore.migration.driver import RunOptions, run_migration
from scenestore.migration.engine import EngineOptions, migrate_batch
from scenestore.migration.models import BatchRequest, BatchResult, parse_request
from scenestore.migration.rollback import rollback_run
from scenestore.migration.shards import Shard, plan_shards

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
