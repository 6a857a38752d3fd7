"""``scenestore migrate --rollback RUN_ID``: point documents back at their old keys, from the run's journal.

Order per batch of journal entries, so no document ever points at a missing object:

1. the run is marked ``rolling_back`` (forward batches of it can no longer record progress) and every
   forward shard lease is waited for, so no forward update of this run lands after we read the journal;
2. old objects that were already deleted are restored by a server-side copy from the new key, and verified;
3. documents still holding the new key are updated back (filtered on the new key, so an app write wins);
4. new objects this run created are deleted once no document references them;
5. the entries are marked ``rolled_back``.

A re-run skips entries already rolled back, and re-does the rest idempotently, so rollback is resumable.
An old key that exists but holds other bytes than the new key is not overwritten: that entry is reported.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

from scenestore.common import get_path
from scenestore.migration import journal, runs
from scenestore.migration.config import MigrationConfig
from scenestore.migration.models import BatchResult
from scenestore.migration.objects import copy_object, same_bytes
from scenestore.migration.pacing import S3Pacer, new_limit
from scenestore.migration.states import JournalState, journal_state, transition
from scenestore.migration.swap import FieldSwap, swap_fields
from scenestore.storage import ObjectInfo
from scenestore.unreferenced import delete_unreferenced

if TYPE_CHECKING:
    from scenestore.migration.batch import Hook
    from scenestore.services import Services

ROLLBACK_BATCH: Final = 500


def rollback_run(
    services: Services,
    run_id: str,
    *,
    config: MigrationConfig | None = None,
    on_info: Callable[[str], None] | None = None,
    hooks: Hook | None = None,
) -> dict[str, Any]:
    config = config or MigrationConfig.from_env()
    info = on_info or (lambda _m: None)
    db = services.db
    doc = runs.get_run(db, run_id)
    started = time.monotonic()
    counts = {"reverted": 0, "restored": 0, "deleted_new": 0}
    report = BatchResult(run_id=run_id)
    if doc.get("status") != runs.ROLLED_BACK:
        stamp = runs.now()
        runs.runs(db).update_one(
            {"_id": run_id}, {"$set": {"status": runs.ROLLING_BACK, "rollback.started_at": stamp, "updated_at": stamp}}
        )
        runs.runs(db).update_one(
            {"_id": run_id, "rollback.lease": {"$exists": False}},
            {"$set": {"rollback.lease": {"owner": None, "expires_at": runs.EPOCH}}},
        )
        _wait_for_forward(services, run_id, info)
        owner = runs.new_owner()
        runs.acquire(db, run_id, runs.ROLLBACK_LEASE, owner, config.lease_ttl, wait_until=float("inf"), on_wait=info)
        beat = runs.Heartbeat(db, owner, config.lease_ttl, config.heartbeat_interval).start()
        beat.hold(run_id, runs.ROLLBACK_LEASE)
        limit = new_limit(services.settings, services.s3, initial=config.workers)
        pacer = S3Pacer(services.store, limit)
        try:
            # Threads start on demand: a pool sized for the ceiling costs only what the limit lets run.
            with ThreadPoolExecutor(limit.ceiling, thread_name_prefix="rollback") as pool:
                batch: list[dict[str, Any]] = []
                for entry in journal.iter_run(db, run_id):
                    if journal_state(entry.get("state")) == JournalState.ROLLED_BACK:
                        continue
                    batch.append(entry)
                    if len(batch) >= ROLLBACK_BATCH:
                        beat.check(run_id, runs.ROLLBACK_LEASE)
                        _rollback_batch(services, pacer, pool, batch, counts, report, hooks)
                        batch = []
                if batch:
                    _rollback_batch(services, pacer, pool, batch, counts, report, hooks)
            if not report.failed:
                stamp = runs.now()
                runs.runs(db).update_one(
                    {"_id": run_id},
                    {"$set": {"status": runs.ROLLED_BACK, "rollback.finished_at": stamp, "updated_at": stamp}},
                )
        finally:
            beat.stop()
            runs.release(db, run_id, runs.ROLLBACK_LEASE, owner)
    final = runs.get_run(db, run_id)
    return {
        "run_id": run_id,
        "status": final.get("status"),
        **counts,
        "skipped": report.skipped,
        "failed": report.failed,
        "errors": report.errors,
        "elapsed_s": round(time.monotonic() - started, 3),
    }


def _wait_for_forward(services: Services, run_id: str, info: Callable[[str], None]) -> None:
    told = False
    while True:
        doc = runs.get_run(services.db, run_id)
        live = [
            (sid, lease.get("owner"))
            for sid, entry in doc.get("shards", {}).items()
            if (lease := entry.get("lease") or {}).get("owner")
            and runs.LeaseInfo(lease.get("owner"), lease.get("expires_at") or runs.EPOCH).remaining() > 0
        ]
        if not live:
            return
        if not told:
            info(f"waiting for {len(live)} forward shard(s) of run {run_id} to stop (held by {live[0][1]})")
            told = True
        time.sleep(0.2)


def _rollback_batch(
    services: Services,
    pacer: S3Pacer,
    pool: Executor,
    entries: list[dict[str, Any]],
    counts: dict[str, int],
    report: BatchResult,
    hooks: Hook | None,
) -> None:
    db, store = services.db, services.store
    by_collection: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_collection[entry["collection"]].append(entry)
    current: dict[str, Any] = {}
    for collection, items in by_collection.items():
        fields = {e["field"]: 1 for e in items}
        ids = list({repr(e["doc_id"]): e["doc_id"] for e in items}.values())
        docs = {repr(d["_id"]): d for d in db[collection].find({"_id": {"$in": ids}}, fields)}
        for e in items:
            current[e["_id"]] = get_path(docs.get(repr(e["doc_id"])), e["field"])
    states = {e["_id"]: journal_state(e.get("state")) for e in entries}
    movable = (JournalState.APPLIED, JournalState.INTENT)
    revert = [e for e in entries if states[e["_id"]] in movable and current[e["_id"]] == e["new_key"]]
    for e in entries:
        if states[e["_id"]] == JournalState.APPLIED and current[e["_id"]] not in (e["new_key"], e["old_key"]):
            report.report("changed_by_app", "the document changed after the move; left as it is", key=e["new_key"])
    blocked = _restore_old_objects(pacer, pool, revert, counts, report)
    revert = [e for e in revert if e["old_key"] not in blocked]
    if hooks:
        hooks("rollback_restored", {"count": len(revert)})
    reverted: set[str] = set()
    for collection in by_collection:
        items = [e for e in revert if e["collection"] == collection]
        if not items:
            continue
        swaps = [FieldSwap(e["doc_id"], e["field"], e["new_key"], e["old_key"]) for e in items]
        for e, landed in zip(items, swap_fields(db[collection], swaps), strict=True):
            if landed:
                reverted.add(e["_id"])
            else:
                report.report("changed_by_app", "the document changed during rollback; left as it is", key=e["new_key"])
    counts["reverted"] += len(reverted)
    if hooks:
        hooks("rollback_updated", {"count": len(reverted)})
    created = [e["new_key"] for e in entries if e.get("created") and e["old_key"] not in blocked]
    deletion = delete_unreferenced(db, store.client, store.bucket, created)
    counts["deleted_new"] += len(deletion.deleted)
    for err in deletion.errors:
        report.report("delete_failed", f"{err.get('code')}: {err.get('message')}", key=err.get("key"))
    outcomes = [
        journal.Outcome(
            e["_id"],
            transition(states[e["_id"]], JournalState.ROLLED_BACK),
            {"reverted": e["_id"] in reverted},
        )
        for e in entries
        if e["old_key"] not in blocked
    ]
    journal.record(db, outcomes)


def _restore_old_objects(
    pacer: S3Pacer, pool: Executor, revert: list[dict[str, Any]], counts: dict[str, int], report: BatchResult
) -> set[str]:
    """Make every old key exist with the new key's bytes; returns old keys that could not be (left migrated).

    Every HEAD and copy runs in a slot of the adaptive in-flight limit (``S3Pacer``), as the forward
    migration's do: it grows at a remote store's distance and halves, then waits, while the store throttles.
    """
    store = pacer.store
    pairs = {e["old_key"]: e["new_key"] for e in revert}
    olds = pacer.head_many(pairs, pool)
    news = pacer.head_many(pairs.values(), pool)
    blocked: set[str] = set()
    to_copy: list[tuple[str, ObjectInfo]] = []
    for old, new in pairs.items():
        new_info, old_info = news.get(new), olds.get(old)
        if old_info is not None:
            if new_info is not None and same_bytes(old_info, new_info) is False:
                blocked.add(old)
                report.report(
                    "rollback_conflict", "the old key holds other bytes than the new one; not reverted", key=old
                )
            continue
        if new_info is None:
            blocked.add(old)
            report.report("source_missing", "neither the old nor the new object exists; not reverted", key=old)
            continue
        to_copy.append((old, new_info))

    def restore(item: tuple[str, ObjectInfo]) -> tuple[str, bool]:
        old, new_info = item
        pacer.run(lambda: copy_object(store, new_info.key, old, new_info.size))
        found = pacer.head(old)
        return old, found is not None and same_bytes(found, new_info) is not False

    for old, ok in pool.map(restore, to_copy):
        if ok:
            counts["restored"] += 1
        else:
            blocked.add(old)
            report.report("verify_failed", "the restored old object does not match; not reverted", key=old)
    return blocked
