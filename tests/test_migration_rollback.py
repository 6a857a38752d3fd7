"""``migrate --rollback``: documents back on their old keys, old objects restored, our new objects gone.

Crash points inside rollback are injected with a hook raising ``SimulatedCrash`` (a real process cannot be
stopped at an exact step); the rollback is then run again and must finish the job.
"""

from __future__ import annotations

import pytest
from scenestore.db import SCENES
from scenestore.errors import InvalidRequest
from scenestore.migration import rollback_run
from scenestore.migration.journal import JOURNAL
from scenestore.migration.runs import RUNS
from scenestore.services import Services

from tests.support.migration import (
    TEST_CONFIG,
    SimulatedCrash,
    assert_references_intact,
    crash_at,
    expire_leases,
    run_to_end,
    seed_alice_project,
    snapshot,
)
from tests.support.s3faults import FaultyS3, with_s3
from tests.support.seed import Seeder


def dataset(services: Services) -> Seeder:
    seed = Seeder(services)
    a = "proj-a"
    seed_alice_project(seed, a, "out/a.mp4", keys=("m/5.jpg",))
    seed.put("users/alice/projects/proj-a/scenes/s5/image/5.jpg", b"pre-existing, other bytes")
    seed.put("users/alice/projects/proj-a/scenes/s6/image/same.jpg", b"same")
    seed.put("m/same.jpg", b"same")
    seed.scene(a, "s5", media="m/5.jpg")
    seed.scene(a, "s6", media="m/same.jpg")  # reuses the pre-existing object: rollback must not delete it
    return seed


def test_rollback_restores_the_before_state(services: Services) -> None:
    seed = dataset(services)
    before = snapshot(services)
    run_to_end(services, batch_size=2)
    assert services.db[SCENES].count_documents({"media.storageKey": {"$gte": "users/", "$lt": "users0"}}) == 6

    outcome = rollback_run(services, "run-1", config=TEST_CONFIG)

    assert outcome["status"] == "rolled_back" and outcome["failed"] == 0
    assert outcome["reverted"] == 8
    assert outcome["restored"] == 6  # every old object had been deleted: all came back by copy
    assert snapshot(services) == before
    assert_references_intact(services, seed)


def test_rollback_is_idempotent_and_a_rolled_back_run_cannot_be_resumed(services: Services) -> None:
    dataset(services)
    before = snapshot(services)
    run_to_end(services, batch_size=3)
    rollback_run(services, "run-1", config=TEST_CONFIG)

    again = rollback_run(services, "run-1", config=TEST_CONFIG)

    assert again["reverted"] == 0 and again["status"] == "rolled_back"
    assert snapshot(services) == before
    with pytest.raises(InvalidRequest):
        run_to_end(services)


@pytest.mark.parametrize("stage", ["rollback_restored", "rollback_updated"])
def test_a_crashed_rollback_resumes(services: Services, stage: str) -> None:
    seed = dataset(services)
    before = snapshot(services)
    run_to_end(services, batch_size=3)

    with pytest.raises(SimulatedCrash):
        rollback_run(services, "run-1", config=TEST_CONFIG, hooks=crash_at(stage))
    assert_references_intact(services, seed)  # never a document pointing at nothing, even mid-rollback
    expire_leases(services)
    outcome = rollback_run(services, "run-1", config=TEST_CONFIG)

    assert outcome["status"] == "rolled_back"
    assert snapshot(services) == before


def test_rollback_of_a_half_finished_run_and_an_app_change_is_left_alone(services: Services) -> None:
    seed = dataset(services)
    with pytest.raises(SimulatedCrash):
        run_to_end(services, batch_size=2, hooks=crash_at("updated", 2))
    expire_leases(services)
    services.db[SCENES].update_one(
        {"_id": "s1"}, {"$set": {"audio.storageKey": "users/alice/projects/proj-a/scenes/s1/audio/new.mp3"}}
    )
    seed.put("users/alice/projects/proj-a/scenes/s1/audio/new.mp3", b"the app's new narration")
    seed.expected[(SCENES, repr("s1"), "audio.storageKey")] = b"the app's new narration"

    outcome = rollback_run(services, "run-1", config=TEST_CONFIG)

    assert outcome["status"] == "rolled_back"
    assert [e["code"] for e in outcome["errors"]] == ["changed_by_app"]
    scene = services.db[SCENES].find_one({"_id": "s1"})
    assert scene["media"]["storageKey"] == "m/1.jpg"
    assert scene["audio"]["storageKey"].endswith("/audio/new.mp3")
    assert_references_intact(services, seed)
    assert services.db[RUNS].find_one({"_id": "run-1"})["status"] == "rolled_back"
    assert services.db[JOURNAL].count_documents({"run_id": "run-1", "state": "rolled_back"}) >= 2


def test_rollback_waits_out_a_slowdown_storm(services: Services) -> None:
    """Fault injection (moto never throttles): every HEAD and CopyObject of the rollback is answered
    ``503 SlowDown`` for 1 s. The rollback's requests run under the adaptive limit and wait the storm out:
    it finishes with every document reverted and every old object restored, nothing failed."""
    seed = dataset(services)
    before = snapshot(services)
    run_to_end(services, batch_size=2)
    faulty = FaultyS3(services.s3)
    storms = [faulty.fail("head_object", "SlowDown", seconds=1.0), faulty.fail("copy_object", "SlowDown", seconds=1.0)]

    outcome = rollback_run(with_s3(services, faulty), "run-1", config=TEST_CONFIG)

    assert storms[0].injected > 0
    assert outcome["status"] == "rolled_back" and outcome["failed"] == 0
    assert (outcome["reverted"], outcome["restored"]) == (8, 6)
    assert snapshot(services) == before
    assert_references_intact(services, seed)
