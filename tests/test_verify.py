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
