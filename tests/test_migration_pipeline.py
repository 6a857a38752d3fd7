"""The engine's pipeline: batch N+1 is planned and copied while batch N's second half runs, never further
ahead; a failure in either half stops the other; a batch's journal outcomes take one round trip.

The hooks here only observe and wait (to hold one half while watching the other): nothing is faked.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pymongo import monitoring
from scenestore.clients import make_mongo_client
from scenestore.db import SCENES
from scenestore.migration.journal import JOURNAL
from scenestore.services import Services

from tests.support.migration import (
    CommandNames,
    SimulatedCrash,
    assert_converged,
    assert_references_intact,
    expire_leases,
    run_batch,
    run_to_end,
    seed_one_project,
)
from tests.support.seed import Seeder


def _scenes(services: Services, count: int) -> Seeder:
    return seed_one_project(services, {f"s{i:03}": f"m/{i:03}.jpg" for i in range(count)})


def test_the_next_batch_is_planned_and_copied_while_the_previous_one_updates(services: Services) -> None:
    """GIVEN batch 1 held inside its document update WHEN the engine runs THEN batch 2 is planned and copied
    meanwhile, and batch 3 is not (one batch ahead at most); the run still converges."""
    seed = _scenes(services, 9)
    held, release = threading.Event(), threading.Event()
    while_held: list[str] = []

    def hook(stage: str, info: dict[str, Any]) -> None:
        if held.is_set() and not release.is_set():
            while_held.append(stage)
            if stage == "verified":  # batch 2 is ready: leave batch 3 half a second to (wrongly) start
                threading.Timer(0.5, release.set).start()
        if stage == "updated" and not held.is_set():
            held.set()
            release.wait(timeout=3.0)

    run_to_end(services, batch_size=3, hooks=hook)

    assert while_held == ["planned", "intent", "copied_one", "copied_one", "copied_one", "copied", "verified"]
    assert_converged(services, seed)


def test_a_crash_behind_stops_the_batch_ahead_at_its_next_step(services: Services) -> None:
    """GIVEN batch 1 crashing after its update while batch 2 is being planned THEN batch 2 stops at its next
    stage boundary (none of its copies is made), the crash propagates, and a re-run converges."""
    seed = _scenes(services, 6)
    seen: list[str] = []
    planned, crashed = threading.Event(), threading.Event()

    def hook(stage: str, info: dict[str, Any]) -> None:
        seen.append(stage)
        if stage == "planned" and seen.count("planned") == 2:
            planned.set()
            crashed.wait(timeout=3.0)  # batch 2 waits here until batch 1 has crashed ...
            time.sleep(0.2)  # ... and the crash has reached the pipeline
        if stage == "updated" and seen.count("updated") == 1:
            planned.wait(timeout=3.0)
            crashed.set()
            raise SimulatedCrash("batch 1 dies after its update")

    with pytest.raises(SimulatedCrash):
        run_batch(services, batch_size=3, hooks=hook)

    after = seen[seen.index("planned", 1) :]
    assert "copied_one" not in after and "intent" not in after
    assert not any(services.store.exists(f"users/u1/projects/p1/scenes/s{i:03}/image/{i:03}.jpg") for i in (3, 4, 5))
    assert_references_intact(services, seed)
    expire_leases(services)
    run_to_end(services, batch_size=3)
    assert_converged(services, seed)


def _journal_write(event: monitoring.CommandStartedEvent) -> bool:
    return event.command_name in ("insert", "update", "delete") and event.command.get(event.command_name) == JOURNAL


def test_a_batch_records_all_its_outcomes_in_one_journal_write(services: Services) -> None:
    """GIVEN one batch whose moves end applied, overtaken by the app, and failed (source gone after its
    intent) THEN after its intents, the batch writes the journal once."""
    _scenes(services, 6)
    listener = CommandNames(keep=_journal_write)
    mongo = make_mongo_client(services.settings, event_listeners=[listener])
    counted = Services(settings=services.settings, s3=services.s3, mongo=mongo)

    def hook(stage: str, info: dict[str, Any]) -> None:
        if stage == "intent" and info["count"]:  # the scenes' batch (the projects' one moves nothing)
            listener.names.clear()  # count from here: the outcomes only
            services.store.delete("m/004.jpg")  # its copy will fail: source_missing
        if stage == "verified":
            services.db[SCENES].update_one({"_id": "s005"}, {"$set": {"media.storageKey": "app/new.jpg"}})

    try:
        result = run_batch(counted, batch_size=10, hooks=hook)
    finally:
        mongo.close()

    assert (result.migrated, result.skipped) == (4, 2)  # s004 source_missing, s005 changed_by_app
    assert listener.names == ["insert"]
    outcomes = sorted(d["state"] for d in services.db[JOURNAL].find({"entry": {"$exists": True}}))
    assert outcomes == ["applied"] * 4 + ["conflict", "failed"]


def test_the_in_flight_limit_is_kept_across_invocations_of_one_process(services: Services) -> None:
    """A warm Lambda's next migrate-batch starts from the limit the last one reached, not from the start."""
    from scenestore.migration.pacing import process_limit

    first = process_limit(services.settings, services.s3, initial=4)
    first.throttled()  # what one invocation learnt
    learnt = first.limit
    again = process_limit(services.settings, services.s3, initial=4)
    assert again is first and again.limit == learnt
    other = process_limit(services.settings, object(), initial=4)
    assert other is not first

    seed_one_project(services, {"s1": "media/one.jpg"})
    slots: list[int] = []
    acquire = first.acquire
    first.acquire = lambda: (slots.append(1), acquire())[1]  # type: ignore[method-assign]
    result = run_batch(services)  # no limit passed: the engine takes the process's
    assert result.migrated == 1
    assert slots  # the invocation's S3 requests went through the process's limit
