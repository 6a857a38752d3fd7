"""A hypothesis state machine: random interleavings of batches (random sizes), crashes at random step
boundaries, resumes, and app writes, against the real local stack.

Invariant after every step: every reference resolves to the bytes it had (or the app's new bytes).
At the end the run is finished and must have converged: verify clean, nothing legacy left that nothing needs.
Crashes are injected with a hook raising ``SimulatedCrash`` (a real process cannot be stopped at an exact
step); leases of a crashed attempt are expired by hand instead of waiting for their TTL.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from scenestore.db import SCENES, find_references
from scenestore.keys import is_legacy_key
from scenestore.services import Services

from tests.support.migration import (
    SimulatedCrash,
    assert_converged,
    assert_references_intact,
    crash_at,
    expire_leases,
    run_batch,
    run_to_end,
    seed_alice_project,
)
from tests.support.seed import Seeder

STAGES = ["planned", "intent", "copied_one", "copied", "verified", "updated", "deleted", "journaled", "committed"]


def reset(services: Services) -> None:
    store = services.store
    keys = [info.key for page in store.iter_pages("") for info in page]
    for start in range(0, len(keys), 1000):
        store.client.delete_objects(
            Bucket=store.bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True}
        )
    for name in services.db.list_collection_names():
        services.db[name].delete_many({})


def build(services: Services) -> Seeder:
    seed = Seeder(services)
    b = seed_alice_project(seed, "pa", "out.mp4", keys=("m/2.jpg", "m/7.png"), share_across=True)
    seed.put("users/alice/projects/pa/scenes/s5/image/2.jpg", b"occupied")
    seed.scene("pa", "s5", media="m/2.jpg")
    seed.scene(b, "s6", media="m/7.png")
    return seed


def test_random_batches_crashes_resumes_and_app_writes_keep_every_reference(services: Services) -> None:
    class Migration(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            reset(services)
            self.seed = build(services)
            self.uploads = 0

        @rule(batch=st.integers(1, 4), stage=st.sampled_from([None, *STAGES]), nth=st.integers(1, 3))
        def invoke(self, batch: int, stage: str | None, nth: int) -> None:
            expire_leases(services)
            hooks: Any = crash_at(stage, nth) if stage else None
            with contextlib.suppress(SimulatedCrash):
                run_batch(services, "run-h", batch_size=batch, hooks=hooks)

        @rule(scene=st.sampled_from(["s1", "s2", "s3", "s5", "s6"]))
        def app_replaces_the_media(self, scene: str) -> None:
            """The app uploads a new picture and completes it: the slot moves on, an unreferenced old goes."""
            self.uploads += 1
            doc = services.db[SCENES].find_one({"_id": scene})
            project = doc["project_id"]
            user = "alice" if project == "pa" else "default"
            key = f"users/{user}/projects/{project}/scenes/{scene}/image/upload-{self.uploads}.jpg"
            data = self.seed.put(key, f"upload {self.uploads}".encode())
            previous = doc["media"]["storageKey"]
            services.db[SCENES].update_one({"_id": scene}, {"$set": {"media.storageKey": key}})
            self.seed.expected[(SCENES, repr(scene), "media.storageKey")] = data
            if not find_references(services.db, [previous]):
                services.store.delete(previous)
                self.seed.legacy.discard(previous)

        @invariant()
        def every_reference_resolves_to_its_bytes(self) -> None:
            assert_references_intact(services, self.seed)

        def teardown(self) -> None:
            expire_leases(services)
            run_to_end(services, "run-h", batch_size=3)
            assert_converged(services, self.seed)
            left = [key for key in self.seed.legacy if services.store.exists(key) and is_legacy_key(key)]
            assert not [k for k in left if not find_references(services.db, [k])]

    run_state_machine_as_test(
        Migration,
        settings=settings(
            max_examples=8,
            stateful_step_count=7,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
