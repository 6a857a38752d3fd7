"""Scale on moto's Step Functions engine: the deployed state machines with the real handlers, at sizes a test
cannot afford.

    .venv/bin/python bench/engine.py [--quick] [--migrate N] [--delete N]

A local stack (its own S3 server and MongoDB-wire server, as ``scenestore serve`` starts them) and the stack's
machines deployed into moto by ``tests/support/moto_engine.py``, every Lambda invoke answered by the real handler:

1. **migration**: N legacy objects (20,000; ``--quick`` 2,000), one per scene, 100 scenes a project, migrated by
   ``infra/migration.asl.yaml`` with 8 shards, migrate-batch on a 2 s budget past its margin (so each shard loops).
   Checked: the execution succeeds, every document points at a layout key whose object holds the legacy object's
   bytes, no legacy object is left, and the batches' ``migrated`` add up to N (each object moved once).
2. **project delete**: N objects (100,000; ``--quick`` 10,000) under one project, deleted by the project
   deletion loop through the app's event and its rule, the delete function on a 1 s budget past its margin (so
   the loop takes continuation rounds). Checked: the execution succeeds, the prefix is empty, and the rounds'
   ``deleted_count`` add up to N (each object deleted once).

Printed for each: wall time of the execution (seeding apart), invocations (rounds), the largest state's size.
This is a benchmark, not a test: the machine's load moves the times; the checks hold whatever the load.
Invocations take turns in this one process (as one execution environment per function would run them), so the
migration's shards share one CPU here where Lambda would give each its own.

``--quick`` on the 2-core build machine, under a load average of about 14 (2026-12-07): migration of 2,000 objects
with 8 shards 48.0 s (24 migrate-batch invocations, largest state 1,605 bytes); project delete of 10,000 objects
8.1 s in 3 rounds (largest state 1,051 bytes); every object moved or deleted once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "scenestore-bench")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

from scenestore.cleanup import DELETE_MARGIN_SECONDS  # noqa: E402
from scenestore.db import PROJECTS, SCENES  # noqa: E402
from scenestore.keys import is_legacy_key  # noqa: E402
from scenestore.migration.config import LAMBDA_MARGIN  # noqa: E402
from scenestore.services import Services, use_services  # noqa: E402
from scenestore.settings import Settings  # noqa: E402
from scenestore_cli.local.bootstrap import prepare  # noqa: E402
from scenestore_cli.local.stack import DevStack  # noqa: E402

from tests.support.moto_engine import STATE_LIMIT, Engine  # noqa: E402
from tests.support.seed import bucket_contents, keys_in, put_objects  # noqa: E402


def fresh(stack: DevStack, name: str) -> Services:
    settings = stack.settings.with_overrides(bucket=name, mongodb_db=name)
    services = Services(settings=settings)
    prepare(services)
    return services


def migration(stack: DevStack, count: int, shards: int) -> dict[str, Any]:
    services = fresh(stack, f"bench-mig-{os.getpid()}")
    keys = [f"media/{i:06d}.jpg" for i in range(count)]
    started = time.perf_counter()
    put_objects(services, keys, body=lambda i: f"object {i}".encode())
    projects = [{"_id": f"p{n}", "user_id": f"u{n % 10}"} for n in range(count // 100 + 1)]
    services.db[PROJECTS].insert_many(projects)
    services.db[SCENES].insert_many(
        [{"_id": f"s{i:06d}", "project_id": f"p{i // 100}", "media": {"storageKey": key}} for i, key in enumerate(keys)]
    )
    seeded = time.perf_counter() - started
    before = bucket_contents(services)
    with use_services(services), Engine() as engine:
        engine.budget["MigrateBatchFunction"] = LAMBDA_MARGIN + 2
        started = time.perf_counter()
        execution = engine.run(
            "MigrationStateMachine", {"shards": shards, "batch_size": 200}, name="bench", timeout=7200
        )
        wall = time.perf_counter() - started
        batches = engine.calls("MigrateBatchFunction")
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    moved = sum(c.answer["migrated"] for c in batches if c.outcome == "ok")
    after = bucket_contents(services)
    for doc in services.db[SCENES].find({}, {"media": 1}):
        key = doc["media"]["storageKey"]
        assert not is_legacy_key(key), doc
        assert after[key] == before[f"media/{doc['_id'][1:]}.jpg"], doc
    assert not [k for k in after if is_legacy_key(k)], "a legacy object is left"
    assert moved == count, f"moved {moved} for {count} objects"
    services.mongo.drop_database(services.settings.mongodb_db)
    largest_answer = engine.largest_answer("MigrateBatchFunction")
    return {"objects": count, "shards": shards, "seed_s": seeded, "wall_s": wall, "invocations": len(batches),
            "largest_state": execution.largest_state, "largest_answer": largest_answer}  # fmt: skip


def project_delete(stack: DevStack, count: int) -> dict[str, Any]:
    services = fresh(stack, f"bench-del-{os.getpid()}")
    prefix = "users/user-1/projects/p1/"
    started = time.perf_counter()
    put_objects(services, [f"{prefix}scenes/s{i % 500}/image/{i:06d}.png" for i in range(count)], body=b"x")
    seeded = time.perf_counter() - started
    event = {
        "source": "autoshorts.app",
        "detail-type": "ProjectDeleted",
        "detail": {"user_id": "user-1", "project_id": "p1"},
    }
    with use_services(services), Engine() as engine:
        engine.budget["DeleteProjectFunction"] = DELETE_MARGIN_SECONDS + 1
        started = time.perf_counter()
        (arn,) = engine.put_event(event)
        execution = engine.wait(arn, timeout=7200)
        wall = time.perf_counter() - started
        rounds = engine.calls("DeleteProjectFunction")
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    deleted = sum(c.answer["deleted_count"] for c in rounds if c.outcome == "ok")
    assert deleted == count, f"deleted {deleted} for {count} objects"
    assert not keys_in(services, prefix), "objects are left"
    services.mongo.drop_database(services.settings.mongodb_db)
    return {"objects": count, "seed_s": seeded, "wall_s": wall, "rounds": len(rounds),
            "largest_state": execution.largest_state}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 objects to migrate, 10,000 to delete")
    parser.add_argument("--migrate", type=int, help="legacy objects to migrate (default 20,000)")
    parser.add_argument("--delete", type=int, help="objects in the deleted project (default 100,000)")
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    to_migrate = args.migrate or (2_000 if args.quick else 20_000)
    to_delete = args.delete or (10_000 if args.quick else 100_000)
    stack = DevStack.create(Settings()).start()
    try:
        mig = migration(stack, to_migrate, args.shards)
        print(
            f"migration: {mig['objects']:,} legacy objects, {mig['shards']} shards: {mig['wall_s']:.1f} s "
            f"({mig['objects'] / mig['wall_s']:.0f} objects/s; seeding {mig['seed_s']:.1f} s), "
            f"{mig['invocations']} migrate-batch invocations, each object moved once; largest state "
            f"{mig['largest_state']:,} bytes (limit {STATE_LIMIT:,}), largest answer {mig['largest_answer']:,} bytes"
        )
        dele = project_delete(stack, to_delete)
        print(
            f"project delete: {dele['objects']:,} objects: {dele['wall_s']:.1f} s "
            f"({dele['objects'] / dele['wall_s']:.0f} objects/s; seeding {dele['seed_s']:.1f} s), "
            f"{dele['rounds']} rounds, each object deleted once; largest state {dele['largest_state']:,} bytes"
        )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
