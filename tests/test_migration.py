"""Migration end to end against the real local stack (moto server + SecantusDB): what moves where."""

from __future__ import annotations

from scenestore.db import PROJECTS, SCENES
from scenestore.services import Services

from tests.support.migration import Seeder, assert_converged, run_to_end


def test_legacy_keys_move_into_the_layout_and_old_objects_go(services: Services) -> None:
    """GIVEN a project with legacy media, audio and output keys WHEN migrated THEN each lives at its layout key."""
    seed = Seeder(services)
    seed.put("media/cat.jpg")
    seed.put("audio/n.mp3")
    seed.put("final.mp4")
    p = seed.project(user="alice", output="final.mp4")
    s = seed.scene(p, media="media/cat.jpg", audio="audio/n.mp3")

    result = run_to_end(services)

    scene = services.db[SCENES].find_one({"_id": s})
    project = services.db[PROJECTS].find_one({"_id": p})
    assert scene["media"]["storageKey"] == f"users/alice/projects/{p}/scenes/{s}/image/cat.jpg"
    assert scene["audio"]["storageKey"] == f"users/alice/projects/{p}/scenes/{s}/audio/n.mp3"
    assert project["output"]["storageKey"] == f"users/alice/projects/{p}/output/final.mp4"
    assert (result.migrated, result.failed, result.skipped) == (3, 0, 0)
    assert result.bytes_copied == sum(len(v) for v in seed.expected.values())
    assert not services.store.exists("media/cat.jpg")
    assert_converged(services, seed)
