"""The migration under the faults of a real store at full speed (contract section 6):

- ``kill -9`` of a real ``scenestore migrate`` process running big batches at the highest concurrency, twice,
  mid-copy and mid-pipeline; a plain re-run converges: verify clean, no referenced object missing, every
  reference on its original bytes, no legacy object left behind;
- a ``SlowDown`` storm: the S3 client is wrapped by ``tests.support.s3faults.FaultyS3``, which answers every
  request with ``503 SlowDown`` for a while (moto never throttles); the run slows down (the adaptive
  in-flight limit halves, requests wait), then finishes with nothing failed and verify clean.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scenestore.concurrency import AdaptiveLimit
from scenestore.db import PROJECTS, SCENES
from scenestore.migration import migrate_batch, verify_storage
from scenestore.migration.journal import JOURNAL, count_applied
from scenestore.migration.runs import RUNS
from scenestore.services import Services

from tests.support.migration import assert_converged, assert_references_intact, options, request
from tests.support.s3faults import FaultyS3, with_s3
from tests.support.seed import Seeder, body, keys_in

MEDIA = "media.storageKey"
SCENESTORE = str(Path(sys.executable).parent / "scenestore")


def seed_many(services: Services, count: int, projects: int = 20) -> Seeder:
    """``count`` scenes of one legacy object each (the common shape), seeded in bulk: PUTs 16 at a time,
    documents with ``insert_many``; the seeder records every reference's bytes as ``Seeder.scene`` would."""
    seed = Seeder(services)
    keys = [f"media/{i:05}.jpg" for i in range(count)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(seed.put, keys))
    services.db[PROJECTS].insert_many([{"_id": f"p{j}", "user_id": f"user{j % 4}"} for j in range(projects)])
    scenes = [
        {"_id": f"s{i:05}", "project_id": f"p{i % projects}", "media": {"storageKey": key, "type": "image"}}
        for i, key in enumerate(keys)
    ]
    services.db[SCENES].insert_many(scenes)
    seed.expected.update({(SCENES, repr(s["_id"]), MEDIA): body(s["media"]["storageKey"]) for s in scenes})
    return seed


def _layout_objects(services: Services) -> int:
    return sum(1 for _ in services.store.iter_objects("users/"))


def _kill_when(proc: subprocess.Popen[str], ready: Any, timeout: float = 120) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (the process must still be running then)."""
    end = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < end, "the migration never got there"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)


def test_kill_9_at_the_highest_concurrency_then_a_rerun_converges(services: Services, cli_env: dict[str, str]) -> None:
    """GIVEN 400 one-object scenes migrated with 2 shards, batches of 100, 64 workers and 64 requests in
    flight WHEN the process is SIGKILLed mid-copy, and again once a first batch is recorded (the next one is
    then in flight behind it) THEN nothing referenced is missing after either kill, and a plain re-run
    finishes the run: 400 moves in the journal, verify clean, every reference on its original bytes."""
    count = 400
    seed = seed_many(services, count)
    env = {
        **cli_env,
        "SCENESTORE_MIGRATION_WORKERS": "64",
        "SCENESTORE_S3_MAX_IN_FLIGHT": "64",
        "SCENESTORE_MIGRATION_LEASE_TTL": "10",
    }
    argv = [SCENESTORE, "migrate", "--batch-size", "100", "--shards", "2", "--json"]
    popen: dict[str, Any] = {"env": env, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}

    first = subprocess.Popen(argv, **popen)
    _kill_when(first, lambda: _layout_objects(services) >= 25)  # copies of the first batches are landing
    assert first.returncode == -signal.SIGKILL
    assert services.db[JOURNAL].count_documents({"state": "applied"}) < count  # it really died mid-run
    assert_references_intact(services, seed)

    second = subprocess.Popen(argv, **popen)
    _kill_when(second, lambda: services.db[JOURNAL].count_documents({"state": "applied"}) >= 100)
    assert second.returncode == -signal.SIGKILL
    assert_references_intact(services, seed)
    run = services.db[RUNS].find_one({})
    assert run is not None and run["status"] == "running"

    final = subprocess.run(argv, **popen, timeout=300, check=False)

    assert final.returncode == 0, final.stderr
    assert count_applied(services.db, run["_id"])["migrated"] == count
    assert services.db[RUNS].find_one({"_id": run["_id"]})["status"] == "done"
    report = assert_converged(services, seed)
    assert report["clean"] and report["objects"] == count  # every byte once, at its layout key only
    assert not any(key.startswith("media/") for key in keys_in(services))


class HalvingRecorder(AdaptiveLimit):
    """The real limit, recording (before, after) at every throttle signal it takes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.changes: list[tuple[int, int]] = []

    def throttled(self) -> None:
        before = self.limit
        super().throttled()
        self.changes.append((before, self.limit))


def test_a_slowdown_storm_slows_the_run_down_then_it_finishes_clean(services: Services) -> None:
    """GIVEN a run whose first batch is recorded WHEN every S3 request (LIST, HEAD, copy, delete) is answered
    ``503 SlowDown`` for 1.5 s THEN the in-flight limit halves (the run slows down), requests are retried
    after pauses, and the run finishes with no move failed or skipped and verify clean."""
    count = 240
    seed = seed_many(services, count, projects=6)
    faulty = FaultyS3(services.s3)
    limit = HalvingRecorder(initial=16, ceiling=32)
    storm: list[Any] = []

    def hook(stage: str, info: dict[str, Any]) -> None:
        if stage == "committed" and not storm:
            storm.append(faulty.fail("*", "SlowDown", seconds=1.5))

    started = time.monotonic()
    result = migrate_batch(
        request(batch_size=40), services=with_s3(services, faulty), options=options(hook, limit=limit)
    )
    elapsed = time.monotonic() - started

    assert storm and storm[0].injected > 0
    assert {"list_objects_v2", "copy_object", "delete_objects"} <= {op for op, n in faulty.calls.items() if n}
    # The limit halved while the storm lasted (once per window of completions: how often depends on the
    # machine's speed, so the test asserts that it did, from whatever the limit had grown to).
    assert limit.throttle_events > 0
    assert any(after <= max(1, before // 2) < before for before, after in limit.changes)
    assert elapsed >= 1.5  # it waited the storm out instead of failing through it
    assert result.done and (result.migrated, result.failed, result.skipped) == (count, 0, 0)
    report = verify_storage(services)
    assert report["ok"] and report["clean"]
    assert_converged(services, seed)
