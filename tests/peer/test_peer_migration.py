"""The legacy-key migration and its rollback against a server that checks signatures: server-side copies,
conditional swaps and deletes, then everything put back (``migrate --rollback``)."""

from __future__ import annotations

import pytest
from scenestore.db import SCENES
from scenestore.migration import rollback_run
from scenestore.services import Services

from tests.support.migration import TEST_CONFIG, assert_converged, assert_references_intact, run_to_end, snapshot
from tests.support.seed import Seeder

pytestmark = [pytest.mark.s3_peer]


def dataset(services: Services) -> Seeder:
    seed = Seeder(services)
    for key in ("m/1.jpg", "a/1.mp3", "m/shared.jpg", "out/a.mp4"):
        seed.put(key)
    a = seed.project("proj-a", user="alice", output="out/a.mp4")
    seed.scene(a, "s1", media="m/1.jpg", audio="a/1.mp3")
    seed.scene(a, "s2", media="m/shared.jpg")
    seed.scene(a, "s3", media="m/shared.jpg")
    b = seed.project("proj-b", user="bob")
    seed.scene(b, "s4", media="m/shared.jpg")  # shared across tenants: each gets its own copy
    return seed


def test_migrate_moves_every_legacy_key_into_the_layout(services: Services) -> None:
    seed = dataset(services)
    result = run_to_end(services, batch_size=2)
    assert result.failed == 0
    assert_converged(services, seed)
    assert services.db[SCENES].count_documents({"media.storageKey": {"$regex": "^users/"}}) == 4


def test_rollback_restores_the_before_state(services: Services) -> None:
    seed = dataset(services)
    before = snapshot(services)
    run_to_end(services, batch_size=2)

    outcome = rollback_run(services, "run-1", config=TEST_CONFIG)

    assert outcome["status"] == "rolled_back" and outcome["failed"] == 0
    assert snapshot(services) == before
    assert_references_intact(services, seed)
