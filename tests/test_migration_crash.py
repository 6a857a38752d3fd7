"""Crash safety: the engine stopped dead at every step boundary, then run again, converges with nothing lost.

Fault injection: a real process cannot be made to die at an exact step boundary, so these tests pass the
engine a hook that raises ``SimulatedCrash`` (a ``BaseException``, like a kill: nothing catches it, the
lease is not released) right after a stage's work. ``test_crash_in_the_middle_of_a_bulk_write`` wraps
pymongo's ``bulk_write`` to apply half its operations before dying, which a real server will not do on
demand. The real ``kill -9`` of a ``scenestore migrate`` process is in ``test_migration_cli.py``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pymongo.collection import Collection
from scenestore.budget import Deadline
from scenestore.db import PROJECTS, SCENES
from scenestore.migration import BatchResult, migrate_batch
from scenestore.migration.config import MigrationConfig
from scenestore.migration.journal import count_applied
from scenestore.migration.runs import RUNS
from scenestore.services import Services

from tests.support.migration import (
    SimulatedCrash,
    assert_converged,
    assert_references_intact,
    crash_at,
    expire_leases,
    options,
    request,
    run_to_end,
    seed_alice_project,
    seed_one_project,
)
from tests.support.seed import Seeder

MOVES = 8  # references that move in the dataset below


def dataset(services: Services) -> Seeder:
    """Two projects, shared objects (scene+scene, scene+output), a collision, a missing source, an orphan."""
    seed = Seeder(services)
    a = "proj-a"
    b = seed_alice_project(seed, a, "out/a.mp4", keys=("m/5.jpg", "m/7.png", "m/8.jpg"), second=True)
    seed.put("users/alice/projects/proj-a/scenes/s5/image/5.jpg", b"a newer upload that must survive")
    seed.scene(a, "s5", media="m/5.jpg")
    seed.scene(a, "s6", media="m/missing.jpg")
    seed.scene(b, "s7", media="m/7.png")
    seed.scene("gone-project", "s8", media="m/8.jpg")
    return seed


def _finish_and_check(services: Services, seed: Seeder, run_id: str = "run-1") -> None:
    expire_leases(services)
    run_to_end(services, run_id, batch_size=3)
    assert_converged(services, seed, allowed_legacy={"m/missing.jpg", "m/8.jpg"}, allowed_missing={"m/missing.jpg"})
    assert services.store.get_bytes("users/alice/projects/proj-a/scenes/s5/image/5.jpg") == (
        b"a newer upload that must survive"
    )
    assert count_applied(services.db, run_id)["migrated"] == MOVES
    assert services.db[RUNS].find_one({"_id": run_id})["status"] == "done"


STAGES = ["planned", "intent", "copied_one", "copied", "verified", "updated", "deleted", "journaled", "committed"]


@pytest.mark.parametrize("nth", [1, 3])
@pytest.mark.parametrize("stage", STAGES)
def test_a_crash_at_any_step_boundary_then_a_rerun_converges(services: Services, stage: str, nth: int) -> None:
    """GIVEN a run killed right after ``stage`` (the nth time) THEN nothing referenced is missing at that moment,
    AND a re-run of the same run finishes with every reference on its original bytes and nothing left over."""
    seed = dataset(services)

    with pytest.raises(SimulatedCrash):
        run_to_end(services, batch_size=3, hooks=crash_at(stage, nth))

    assert_references_intact(services, seed)
    _finish_and_check(services, seed)


def test_crashes_in_a_row_at_different_steps_still_converge(services: Services) -> None:
    seed = dataset(services)
    crashes = 0
    for stage in ("copied", "updated", "intent", "deleted", "verified", "journaled"):
        try:
            run_to_end(services, batch_size=2, hooks=crash_at(stage))
        except SimulatedCrash:
            crashes += 1
            expire_leases(services)
        assert_references_intact(services, seed)
    assert crashes == 6
    _finish_and_check(services, seed)


def test_crash_in_the_middle_of_a_bulk_write(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: ``bulk_write`` on scenes applies its first half, then the process dies."""
    seed = dataset(services)
    original = Collection.bulk_write
    calls = [0]

    def half_then_die(self: Collection[Any], requests: list[Any], *args: Any, **kwargs: Any) -> Any:
        if self.name == SCENES and len(requests) > 1:
            calls[0] += 1
            original(self, requests[: len(requests) // 2], *args, **kwargs)
            raise SimulatedCrash("died inside bulk_write")
        return original(self, requests, *args, **kwargs)

    monkeypatch.setattr(Collection, "bulk_write", half_then_die)
    with pytest.raises(SimulatedCrash):
        run_to_end(services, batch_size=3)
    monkeypatch.setattr(Collection, "bulk_write", original)
    expire_leases(services)

    assert calls == [1]
    moved = services.db[SCENES].count_documents({"media.storageKey": {"$gte": "users/", "$lt": "users0"}})
    assert moved == 1  # the half that landed
    assert_references_intact(services, seed)
    _finish_and_check(services, seed)


def test_the_app_changing_a_document_between_copy_and_update_wins(services: Services) -> None:
    """Fault injection: the hook plays the app, writing the scene after the copy, before the update."""
    seed = Seeder(services)
    seed.put("old.jpg")
    p = seed.project("p1")
    seed.scene(p, "s1", media="old.jpg")
    app_key = "users/u1/projects/p1/scenes/s1/image/new-upload.jpg"
    seed.put(app_key, b"the user's new picture")

    def app_writes(stage: str, info: dict[str, Any]) -> None:
        if stage == "verified":
            services.db[SCENES].update_one({"_id": "s1"}, {"$set": {"media.storageKey": app_key}})

    result = run_to_end(services, hooks=app_writes)

    assert services.db[SCENES].find_one({"_id": "s1"})["media"]["storageKey"] == app_key
    assert services.store.get_bytes(app_key) == b"the user's new picture"
    assert (result.migrated, result.skipped) == (0, 1)
    assert [e["code"] for e in result.errors] == ["changed_by_app"]
    assert not services.store.exists("users/u1/projects/p1/scenes/s1/image/old.jpg")  # our copy was removed again
    assert not services.store.exists("old.jpg")  # nothing references it any more


def test_the_lambda_path_stops_before_its_deadline_with_a_cursor_and_counts_exactly(services: Services) -> None:
    """Fault injection: a hook slows each copy down so the deadline lands in the middle of a batch."""
    seed = seed_one_project(services, {f"s{i:02}": f"k/{i:02}.jpg" for i in range(12)})

    def slow(stage: str, info: dict[str, Any]) -> None:
        if stage == "copied_one":
            time.sleep(0.15)

    cursors: list[str | None] = []
    total = BatchResult(run_id="run-1")
    cursor = None
    for _ in range(60):
        result = migrate_batch(
            request(batch_size=6, cursor=cursor),
            services=services,
            deadline=Deadline.after(0.4),
            options=options(slow, config=MigrationConfig(lease_ttl=5, workers=2)),
        )
        cursors.append(result.cursor)
        total.merge(result)
        cursor = result.cursor
        assert_references_intact(services, seed)
        if result.done:
            break
    assert total.done and len(cursors) > 2  # it took several invocations
    assert total.migrated == 12 and total.scanned == 13  # 12 scenes and 1 project, each counted once
    assert_converged(services, seed)


def test_a_second_copy_of_the_same_run_cannot_double_apply(services: Services) -> None:
    """Two invocations of one run and shard at once: one holds the lease, the other waits; all counted once."""
    seed = seed_one_project(services, {f"s{i:02}": f"k/{i}.jpg" for i in range(20)})
    results: list[BatchResult] = []
    waits: list[str] = []

    def invoke() -> None:
        results.append(migrate_batch(request(batch_size=4), services=services, options=options(on_wait=waits.append)))

    threads = [threading.Thread(target=invoke) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(results) == 2 and all(r.done for r in results)
    assert sorted(r.migrated for r in results) == [0, 20]
    assert len(waits) == 1 and "waiting" in waits[0]
    run = services.db[RUNS].find_one({"_id": "run-1"})
    assert run["totals"]["migrated"] == 20 and run["status"] == "done"
    assert_converged(services, seed)


def test_a_dead_runs_lease_lapses_and_the_next_invocation_takes_over(services: Services) -> None:
    """The lease of a run that died is not released; the next invocation waits (saying so) for it to lapse."""
    seed = dataset(services)
    short = MigrationConfig(lease_ttl=1.5, workers=4)
    with pytest.raises(SimulatedCrash):
        migrate_batch(request(batch_size=3), services=services, options=options(crash_at("copied", 2), config=short))
    lease = services.db[RUNS].find_one({"_id": "run-1"})["shards"]["all"]["lease"]
    assert lease["owner"] is not None  # a killed process does not release its lease
    waits: list[str] = []

    started = time.monotonic()
    result = migrate_batch(
        request(batch_size=3), services=services, options=options(on_wait=waits.append, config=short)
    )

    assert result.done
    assert waits and "waiting" in waits[0]
    assert 0.5 < time.monotonic() - started < 30  # waited for the lease to lapse, not forever
    assert_references_intact(services, seed)
    assert services.db[PROJECTS].find_one({"_id": "proj-a"})["output"]["storageKey"].startswith("users/alice/")


def test_journal_entries_the_run_document_does_not_point_at_are_still_found(services: Services) -> None:
    """Fault injection: after a crash past the intents, the shard's ``dirty_until`` is erased by hand (as if
    an attempt had journalled without saying so); the next batch trips over its intents and reads them."""
    seed = dataset(services)
    with pytest.raises(SimulatedCrash):
        run_to_end(services, batch_size=3, hooks=crash_at("copied", 1))
    services.db[RUNS].update_one({"_id": "run-1"}, {"$set": {"shards.all.dirty_until": None}})
    _finish_and_check(services, seed)
