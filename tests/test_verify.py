"""``scenestore verify`` / ``verify_storage``: every finding it reports, on real data in the local stack."""

from __future__ import annotations

from bson import ObjectId
from scenestore.migration import verify_storage
from scenestore.migration.audit import count_legacy_references
from scenestore.services import Services

from tests.support.migration import run_to_end
from tests.support.seed import Seeder


def test_a_consistent_bucket_is_ok_and_clean(services: Services) -> None:
    seed = Seeder(services)
    p = seed.project("p1", output="users/u1/projects/p1/output/final.mp4")
    seed.put("users/u1/projects/p1/output/final.mp4")
    seed.put("users/u1/projects/p1/scenes/s1/image/a.jpg")
    seed.scene(p, "s1", media="users/u1/projects/p1/scenes/s1/image/a.jpg")

    report = verify_storage(services)

    assert report["ok"] and report["clean"]
    assert (report["objects"], report["references"], report["missing"]) == (2, 2, 0)
    assert (report["legacy_referenced"], report["orphaned"], report["unreferenced"]) == (0, 0, 0)


def test_every_kind_of_finding_is_reported(services: Services) -> None:
    seed = Seeder(services)
    p = seed.project("p1")
    other = seed.project(ObjectId(), user="someone-else")
    seed.put("legacy.jpg")
    seed.scene(p, "s1", media="legacy.jpg", audio="users/u1/projects/p1/scenes/s1/audio/missing.mp3")
    seed.scene(p, "s2", media="also-missing.jpg")
    seed.put("users/u1/projects/p1/scenes/s1/image/stray.jpg", b"12345")
    seed.put("users/u1/projects/deleted-project/output/old.mp4", b"1234567")
    seed.put(f"users/u1/projects/{other}/output/wrong-owner.mp4", b"12")
    seed.put("zz-unreferenced-legacy.bin", b"1")

    report = verify_storage(services)

    assert report["ok"] is False and report["clean"] is False
    assert report["missing"] == 2
    assert sorted(report["missing_keys"]) == ["also-missing.jpg", "users/u1/projects/p1/scenes/s1/audio/missing.mp3"]
    assert report["legacy_referenced"] == 2 and sorted(report["legacy_keys"]) == ["also-missing.jpg", "legacy.jpg"]
    assert report["orphaned"] == 2 and report["orphaned_bytes"] == 9
    assert sorted(report["orphaned_keys"]) == sorted(
        ["users/u1/projects/deleted-project/output/old.mp4", f"users/u1/projects/{other}/output/wrong-owner.mp4"]
    )
    assert report["unreferenced"] == 4
    assert "zz-unreferenced-legacy.bin" in report["unreferenced_keys"]
    assert "users/u1/projects/p1/scenes/s1/image/stray.jpg" in report["unreferenced_keys"]
    assert count_legacy_references(services) == 2


def test_after_a_migration_verify_is_clean_and_legacy_count_is_zero(services: Services) -> None:
    seed = Seeder(services)
    p = seed.project("p1", output="render.mp4")
    for key in ("a.jpg", "b.mp3", "render.mp4"):
        seed.put(key)
    seed.scene(p, "s1", media="a.jpg", audio="b.mp3")
    assert count_legacy_references(services) == 3
    assert verify_storage(services)["legacy_referenced"] == 3

    run_to_end(services)

    report = verify_storage(services)
    assert report["ok"] and report["clean"] and report["unreferenced"] == 0 and report["objects"] == 3
    assert count_legacy_references(services) == 0


def test_the_report_is_plain_json_for_a_state_machine(services: Services) -> None:
    import json

    report = verify_storage(services)
    assert json.loads(json.dumps(report)) == report
    assert isinstance(report["ok"], bool) and isinstance(report["missing"], int)


def test_scenes_of_a_deleted_project_are_orphans_apart_and_do_not_fail_the_audit(services: Services) -> None:
    """GIVEN a project deleted while its scene documents remain (as the app may keep them a while), one holding a
    key whose object is gone, one a legacy key, one an object still there, and a scene with no project at all
    WHEN verify runs THEN those scenes are counted as orphans, apart: the audit passes, nothing is "missing" or
    "legacy referenced", and the object they still point at is not "unreferenced"."""
    seed = Seeder(services)
    live = seed.project("p1", output="users/u1/projects/p1/output/final.mp4")
    seed.put("users/u1/projects/p1/output/final.mp4")
    gone = ObjectId()
    seed.put(f"users/u1/projects/{gone}/scenes/s2/image/kept.jpg", b"123")
    seed.scene(gone, "s1", media=f"users/u1/projects/{gone}/scenes/s1/image/deleted.jpg")
    seed.scene(str(gone), "s2", media=f"users/u1/projects/{gone}/scenes/s2/image/kept.jpg", audio="old-legacy.mp3")
    services.db["scenes"].insert_one({"_id": "s3", "media": {"storageKey": "never-had-a-project.jpg"}})
    seed.scene(live, "s4", media="users/u1/projects/p1/output/final.mp4")

    report = verify_storage(services)

    assert report["ok"] is True and report["clean"] is True
    assert (report["missing"], report["missing_keys"], report["legacy_referenced"]) == (0, [], 0)
    assert report["orphan_scenes"] == 3 and sorted(report["orphan_scene_ids"]) == ["s1", "s2", "s3"]
    assert report["orphan_scene_references"] == 4 and report["orphan_scene_missing"] == 3
    assert f"users/u1/projects/{gone}/scenes/s1/image/deleted.jpg" in report["orphan_scene_keys"]
    assert report["unreferenced"] == 0 and report["references"] == 2
    assert report["orphaned"] == 1  # the object under the deleted project: its storage is still to be cleaned


def test_an_orphan_scene_does_not_hide_a_live_scene_missing_the_same_key(services: Services) -> None:
    seed = Seeder(services)
    live = seed.project("p1")
    seed.scene(ObjectId(), "s1", media="shared.jpg")
    seed.scene(live, "s2", media="shared.jpg")

    report = verify_storage(services)

    assert report["ok"] is False and report["missing_keys"] == ["shared.jpg"]
    assert (report["orphan_scenes"], report["orphan_scene_missing"]) == (1, 1)
