"""Migration end to end against the real local stack (moto server + SecantusDB): what moves where, and the
contract's guarantees that need no fault injection (shared objects, collisions, missing sources, orphans,
odd names, dry run, re-runs)."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from scenestore.db import PROJECTS, SCENES
from scenestore.migration import migrate_batch
from scenestore.migration.journal import JOURNAL
from scenestore.migration.runs import RUNS
from scenestore.services import Services

from tests.support.migration import assert_converged, assert_references_intact, options, request, run_to_end, snapshot
from tests.support.seed import Seeder


def _seeded(services: Services, *keys: str, **project: Any) -> tuple[Seeder, Any]:
    """A Seeder that has put ``keys`` (each with bytes of its own), then made one project of ``project``."""
    seed = Seeder(services)
    for key in keys:
        seed.put(key)
    return seed, seed.project(**project)


def _photo_whose_target_is_taken(services: Services, legacy: bytes, taken: bytes) -> tuple[Seeder, ObjectId, str]:
    """A scene on the legacy ``photo.jpg`` (``legacy`` bytes) whose layout key already holds ``taken``: the Seeder,
    the scene's id and that layout key."""
    seed = Seeder(services)
    seed.put("photo.jpg", legacy)
    p, s = ObjectId(), ObjectId()
    target = f"users/u1/projects/{p}/scenes/{s}/image/photo.jpg"
    seed.put(target, taken)
    seed.project(p)
    seed.scene(p, s, media="photo.jpg")
    return seed, s, target


def _key(services: Services, collection: str, doc_id: Any, field: str) -> Any:
    doc: Any = services.db[collection].find_one({"_id": doc_id})
    for part in field.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def test_legacy_keys_move_into_the_layout_and_old_objects_go(services: Services) -> None:
    """GIVEN a project with legacy media, audio and output keys WHEN migrated THEN each lives at its layout key."""
    seed, p = _seeded(services, "media/cat.jpg", "audio/n.mp3", "final.mp4", user="alice", output="final.mp4")
    s = seed.scene(p, media="media/cat.jpg", audio="audio/n.mp3")

    result = run_to_end(services)

    assert _key(services, SCENES, s, "media.storageKey") == f"users/alice/projects/{p}/scenes/{s}/image/cat.jpg"
    assert _key(services, SCENES, s, "audio.storageKey") == f"users/alice/projects/{p}/scenes/{s}/audio/n.mp3"
    assert _key(services, PROJECTS, p, "output.storageKey") == f"users/alice/projects/{p}/output/final.mp4"
    assert (result.migrated, result.failed, result.skipped) == (3, 0, 0)
    assert result.bytes_copied == sum(len(v) for v in seed.expected.values())
    assert not services.store.exists("media/cat.jpg")
    head = services.store.head(f"users/alice/projects/{p}/scenes/{s}/image/cat.jpg")
    assert head is not None and head.content_type == "application/octet-stream"  # metadata copied along
    assert_converged(services, seed)


def test_media_type_decides_the_kind_and_a_project_without_user_is_default(services: Services) -> None:
    seed, p = _seeded(services, "v.mp4", "i.png", user=None)
    video = seed.scene(p, media="v.mp4", media_type="video")
    untyped = seed.scene(p, media="i.png", media_type=None)

    run_to_end(services)

    assert _key(services, SCENES, video, "media.storageKey") == f"users/default/projects/{p}/scenes/{video}/video/v.mp4"
    assert _key(services, SCENES, untyped, "media.storageKey") == (
        f"users/default/projects/{p}/scenes/{untyped}/image/i.png"
    )
    assert_converged(services, seed)


def test_two_scenes_sharing_a_legacy_object_both_end_valid_and_the_object_goes_last(services: Services) -> None:
    """The seed deleted the object after the first copy, losing the second scene's file (contract section 8)."""
    seed, p = _seeded(services, "shared.jpg")
    first = seed.scene(p, media="shared.jpg")
    second = seed.scene(p, media="shared.jpg")
    seen_after_first_batch: list[bool] = []

    def hook(stage: str, info: dict[str, Any]) -> None:
        if stage == "committed" and not seen_after_first_batch:
            seen_after_first_batch.append(services.store.exists("shared.jpg"))

    run_to_end(services, batch_size=1, hooks=hook)

    assert seen_after_first_batch == [True]  # still needed by the second scene after the first one moved
    assert_references_intact(services, seed)
    keys = {_key(services, SCENES, s, "media.storageKey") for s in (first, second)}
    assert len(keys) == 2 and all(k.startswith("users/u1/") for k in keys)
    assert not services.store.exists("shared.jpg")
    assert_converged(services, seed)


def test_a_scene_and_a_project_output_sharing_an_object(services: Services) -> None:
    seed, p = _seeded(services, "render.mp4", output="render.mp4")
    s = seed.scene(p, media="render.mp4", media_type="video")

    result = run_to_end(services, batch_size=1)

    assert result.migrated == 2
    assert _key(services, PROJECTS, p, "output.storageKey") == f"users/u1/projects/{p}/output/render.mp4"
    assert _key(services, SCENES, s, "media.storageKey") == f"users/u1/projects/{p}/scenes/{s}/video/render.mp4"
    assert not services.store.exists("render.mp4")
    assert_converged(services, seed)


def test_a_target_holding_other_bytes_is_never_overwritten(services: Services) -> None:
    """GIVEN the layout key already holds a different file WHEN migrating THEN a distinct name is chosen."""
    seed, s, taken = _photo_whose_target_is_taken(services, b"legacy bytes", b"someone else's newer upload")
    seed.put(taken.replace("photo.jpg", "photo-2.jpg"), b"and another one")

    run_to_end(services)

    assert _key(services, SCENES, s, "media.storageKey") == taken.replace("photo.jpg", "photo-3.jpg")
    assert services.store.get_bytes(taken) == b"someone else's newer upload"
    assert services.store.get_bytes(taken.replace("photo.jpg", "photo-2.jpg")) == b"and another one"
    assert_converged(services, seed)


def test_a_target_already_holding_the_same_bytes_is_reused(services: Services) -> None:
    seed, s, target = _photo_whose_target_is_taken(services, b"same bytes", b"same bytes")

    result = run_to_end(services)

    assert _key(services, SCENES, s, "media.storageKey") == target
    assert (result.migrated, result.bytes_copied) == (1, 0)
    assert not services.store.exists("photo.jpg")
    assert_converged(services, seed)


def test_a_missing_source_is_reported_and_the_document_left_alone(services: Services) -> None:
    seed, p = _seeded(services, "here.jpg")
    gone = seed.scene(p, media="gone.jpg")
    fine = seed.scene(p, media="here.jpg")

    result = run_to_end(services)

    assert _key(services, SCENES, gone, "media.storageKey") == "gone.jpg"
    assert _key(services, SCENES, fine, "media.storageKey").startswith("users/")
    assert (result.migrated, result.skipped, result.failed) == (1, 1, 0)
    assert [(e["code"], e["key"], e["id"]) for e in result.errors] == [("source_missing", "gone.jpg", f"oid:{gone}")]
    assert_converged(services, seed, allowed_legacy={"gone.jpg"}, allowed_missing={"gone.jpg"})


def test_an_orphan_scene_is_reported_and_left_alone_and_keeps_its_shared_object(services: Services) -> None:
    seed, p = _seeded(services, "both.jpg")
    orphan = seed.scene("no-such-project", media="both.jpg")
    fine = seed.scene(p, media="both.jpg")

    result = run_to_end(services)

    assert _key(services, SCENES, orphan, "media.storageKey") == "both.jpg"
    assert services.store.exists("both.jpg")  # the orphan still needs it
    assert _key(services, SCENES, fine, "media.storageKey").startswith("users/")
    assert [e["code"] for e in result.errors] == ["orphan_scene"]
    assert (result.migrated, result.skipped) == (1, 1)
    assert_converged(services, seed, allowed_legacy={"both.jpg"})


def test_odd_basenames_are_sanitized_by_the_key_rules(services: Services) -> None:
    seed = Seeder(services)
    names = {
        "uploads/My Photo (1).JPG": "My-Photo-1-.jpg",
        "caf\u00e9 \u00fcber.png": "caf-ber.png",
        "dir/.hidden.gif": "hidden.gif",
        "x/" + "a" * 200 + ".webp": "a" * 115 + ".webp",
    }
    p = seed.project()
    scenes = {}
    for old in names:
        seed.put(old)
        scenes[old] = seed.scene(p, media=old)
    seed.put("trailing/")  # a "directory marker" object: no file name to keep
    bad = seed.scene(p, media="trailing/")

    result = run_to_end(services)

    for old, new_name in names.items():
        assert _key(services, SCENES, scenes[old], "media.storageKey").endswith(f"/image/{new_name}")
    assert _key(services, SCENES, bad, "media.storageKey") == "trailing/"
    assert [e["code"] for e in result.errors] == ["invalid_filename"]
    assert result.failed == 1
    assert_references_intact(services, seed)


def test_ids_that_are_not_valid_layout_ids_are_reported_not_rewritten(services: Services) -> None:
    seed, p = _seeded(services, "a.jpg", user="auth0|12345")
    s = seed.scene(p, media="a.jpg")

    result = run_to_end(services)

    assert _key(services, SCENES, s, "media.storageKey") == "a.jpg"
    assert [e["code"] for e in result.errors] == ["invalid_id"] and result.failed == 1
    assert services.store.exists("a.jpg")


def test_mixed_string_and_objectid_ids_and_a_project_without_scenes(services: Services) -> None:
    seed = Seeder(services)
    for key in ("s1.jpg", "s2.jpg", "out1.mp4", "out2.mp4"):
        seed.put(key)
    p_str = seed.project("proj-string", output="out1.mp4")
    p_oid = seed.project(output="out2.mp4")  # no scenes at all: its output must move too
    s_str = seed.scene(p_str, "scene-string", media="s1.jpg")
    s_oid = seed.scene(p_str, media="s2.jpg")

    result = run_to_end(services, batch_size=1)

    assert result.migrated == 4
    assert _key(services, SCENES, s_str, "media.storageKey") == (
        "users/u1/projects/proj-string/scenes/scene-string/image/s1.jpg"
    )
    assert _key(services, SCENES, s_oid, "media.storageKey").startswith("users/u1/projects/proj-string/")
    assert _key(services, PROJECTS, p_oid, "output.storageKey") == f"users/u1/projects/{p_oid}/output/out2.mp4"
    assert_converged(services, seed)


def test_a_multipart_object_whose_etag_is_not_an_md5_is_verified_by_size(services: Services) -> None:
    seed = Seeder(services)
    client, bucket = services.store.client, services.settings.bucket
    upload = client.create_multipart_upload(Bucket=bucket, Key="big/video.mp4")
    part = b"v" * (5 * 1024 * 1024)
    etags = [
        client.upload_part(Bucket=bucket, Key="big/video.mp4", UploadId=upload["UploadId"], PartNumber=n, Body=part)[
            "ETag"
        ]
        for n in (1, 2)
    ]
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="big/video.mp4",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in zip((1, 2), etags, strict=True)]},
    )
    assert "-" in services.store.require("big/video.mp4").etag
    seed.legacy.add("big/video.mp4")
    p = seed.project()
    s = seed.scene(p, media="big/video.mp4", media_type="video")

    result = run_to_end(services)

    assert result.migrated == 1 and result.bytes_copied == 2 * len(part)
    assert services.store.get_bytes(_key(services, SCENES, s, "media.storageKey")) == part * 2
    assert_converged(services, seed)


def test_dry_run_changes_nothing_and_reports_what_would_happen(services: Services) -> None:
    seed, p = _seeded(services, "a.jpg", "b.mp3", output="missing.mp4")
    seed.scene(p, media="a.jpg", audio="b.mp3")
    before = snapshot(services)
    collections_before = sorted(services.db.list_collection_names())

    result = migrate_batch(request("dry-1", dry_run=True), services=services, options=options())

    assert snapshot(services) == before
    assert sorted(services.db.list_collection_names()) == collections_before
    assert JOURNAL not in collections_before and RUNS not in collections_before
    assert result.done
    assert (result.migrated, result.skipped) == (2, 1)
    assert result.bytes_copied == len(before["bucket"]["a.jpg"]) + len(before["bucket"]["b.mp3"])
    assert [e["code"] for e in result.errors] == ["source_missing"]


def test_re_running_a_finished_run_migrates_nothing(services: Services) -> None:
    seed, p = _seeded(services, "a.jpg")
    seed.scene(p, media="a.jpg")
    first = run_to_end(services, "run-a")
    after_first = snapshot(services)

    same_run = run_to_end(services, "run-a")
    new_run = run_to_end(services, "run-b")

    assert first.migrated == 1
    assert (same_run.migrated, same_run.scanned) == (0, 0)
    assert new_run.migrated == 0 and new_run.scanned == 2 and new_run.errors == []
    assert snapshot(services) == after_first
    assert services.db[RUNS].find_one({"_id": "run-a"})["status"] == "done"
