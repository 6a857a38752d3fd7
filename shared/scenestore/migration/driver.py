"""A whole run from one process (``scenestore migrate``): the same ``migrate_batch`` per shard, in threads.

Choosing the run: ``--resume RUN_ID`` continues that run; otherwise the newest unfinished run is taken over
(a crashed or still running ``scenestore migrate``: its shard leases are waited for, saying so, until they
are released or lapse); otherwise a new run is planned with K shards. The legacy inventory is listed once
per run. Shards run concurrently and share one copy pool and one lease heartbeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scenestore.errors import InvalidRequest
from scenestore.migration import journal, runs, shards
from scenestore.migration.config import DEFAULT_BATCH_SIZE, MigrationConfig
from scenestore.migration.engine import EngineOptions, ProgressCallback, migrate_batch
from scenestore.migration.inventory import MEMORY_LIMIT, MemoryIndex, StoredIndex
from scenestore.migration.models import BatchRequest, BatchResult, ShardRange
from scenestore.migration.pacing import new_limit

if TYPE_CHECKING:
    from scenestore.migration.batch import Hook
    from scenestore.services import Services


@dataclass
class RunOptions:
    batch_size: int = DEFAULT_BATCH_SIZE
    shards: int = 1
    dry_run: bool = False
    resume: str | None = None
    config: MigrationConfig | None = None
    hooks: Hook | None = None
    on_progress: ProgressCallback | None = None
    on_info: Callable[[str], None] | None = None


def run_migration(services: Services, options: RunOptions) -> dict[str, Any]:
    """Run (or resume, or take over) a migration to the end; returns the summary the CLI prints."""
    started = time.monotonic()
    config = options.config or MigrationConfig.from_env()
    info = options.on_info or (lambda _message: None)
    if not 1 <= options.batch_size <= 1000:
        raise InvalidRequest("--batch-size must be between 1 and 1000")
    if options.dry_run:
        run_id = options.resume or runs.new_run_id().replace("mig-", "dry-")
        plan = shards.plan(services.db, options.shards)
        planned = plan.shards
        sources: Any = MemoryIndex.build(services.store)
        status = "dry_run"
    else:
        run_id, planned = _resolve_run(services, options, info)
        sources = MemoryIndex.build(services.store, limit=MEMORY_LIMIT)
        if sources is None:  # too many to hold: share them through the database instead
            stored = StoredIndex(services.db, run_id)
            stored.build(services.store)
            sources = stored
        status = runs.RUNNING
    total = BatchResult(run_id=run_id)
    shard_results: list[BatchResult] = []
    limit = new_limit(services.settings, services.s3, initial=config.workers)
    with ThreadPoolExecutor(limit.ceiling, thread_name_prefix="migrate-copy") as pool:
        heartbeat = runs.Heartbeat(services.db, runs.new_owner(), config.lease_ttl, config.heartbeat_interval).start()
        try:
            engine = EngineOptions(
                config=config,
                owner=heartbeat.owner,
                pool=pool,
                limit=limit,
                heartbeat=heartbeat,
                sources=sources,
                hooks=options.hooks,
                on_progress=options.on_progress,
                on_wait=info,
            )

            def one(shard: shards.Shard) -> BatchResult:
                request = BatchRequest(
                    run_id=run_id,
                    batch_size=options.batch_size,
                    dry_run=options.dry_run,
                    shard=ShardRange(gte=shard.gte, lt=shard.lt) if shard.id != shards.WHOLE else None,
                )
                return migrate_batch(request, services=services, options=engine)

            with ThreadPoolExecutor(max(1, len(planned)), thread_name_prefix="migrate-shard") as shard_pool:
                shard_results = list(shard_pool.map(one, planned))
        finally:
            heartbeat.stop()
    for result in shard_results:
        total.merge(result)
    total.done = all(r.done for r in shard_results)
    summary: dict[str, Any] = {
        **total.to_dict(),
        "cursor": shard_results[0].cursor if len(shard_results) == 1 else None,
        "dry_run": options.dry_run,
        "status": status,
        "shards": [
            {**s.to_dict(), "cursor": r.cursor, "done": r.done} for s, r in zip(planned, shard_results, strict=True)
        ],
        "elapsed_s": round(time.monotonic() - started, 3),
        "s3_in_flight": {"last": limit.limit, "peak": limit.peak, "throttled": limit.throttle_events},
    }
    if options.dry_run:
        summary["moves"] = total.moves
        summary["moves_capped"] = len(total.moves) < total.migrated  # only the first MAX_LISTED_MOVES are listed
    else:
        finished = runs.finish_if_complete(services.db, run_id)
        doc = runs.get_run(services.db, run_id)
        summary["status"] = doc.get("status")
        summary["run_totals"] = {**doc.get("totals", {}), **journal.count_applied(services.db, run_id)}
        if finished and isinstance(sources, StoredIndex):
            sources.drop()
    return summary


def _resolve_run(
    services: Services, options: RunOptions, info: Callable[[str], None]
) -> tuple[str, list[shards.Shard]]:
    db = services.db
    if options.resume:
        doc = runs.get_run(db, options.resume)
        runs.require_forward(doc)
        info(f"resuming run {doc['_id']} ({doc.get('status')})")
    else:
        found = runs.find_unfinished(db)
        if found is None:
            plan = shards.plan(db, options.shards)
            if plan.unsupported_ids:
                info(f"warning: {plan.unsupported_ids} scenes have an _id that is not an ObjectId, string or number")
            run_id = runs.new_run_id()
            runs.ensure_run(db, run_id, batch_size=options.batch_size, planned=plan.shards)
            info(f"started run {run_id} with {len(plan.shards)} shard(s)")
            return run_id, plan.shards
        doc = found
        info(f"taking over unfinished run {doc['_id']} (started {doc.get('created_at')})")
    return doc["_id"], _planned_shards(doc)


def _planned_shards(doc: dict[str, Any]) -> list[shards.Shard]:
    if doc.get("planned"):
        return [shards.Shard.from_dict(s) for s in doc["planned"]]
    registered = [shards.Shard(gte=e.get("gte"), lt=e.get("lt")) for e in doc.get("shards", {}).values()]
    if registered and shards.check_coverage(registered):
        return registered
    if not registered:
        return [shards.Shard()]
    raise InvalidRequest(
        f"run {doc['_id']} was started by a state machine with shards that do not cover every _id; finish it there"
    )
