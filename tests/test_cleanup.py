"""What a deletion removes (contract section 5): exactly the prefix, plus legacy objects only it referenced.

All against the local stack (moto S3 server + SecantusDB), through ``scenestore.cleanup.delete_target``.
"""

from __future__ import annotations

import pytest
from scenestore.cleanup import delete_target
from scenestore.events import DeletionRequest
from scenestore.services import Services

from tests.support.seed import add_project, add_scene, audio, image, keys_in, output, put_objects, scene_doc


def project(user: str, project_id: str, **kw: object) -> DeletionRequest:
    return DeletionRequest(target="project", user_id=user, project_id=project_id, **kw)  # type: ignore[arg-type]


def scene(user: str | None, project_id: str, scene_id: str, **kw: object) -> DeletionRequest:
    return DeletionRequest(target="scene", user_id=user, project_id=project_id, scene_id=scene_id, **kw)  # type: ignore[arg-type]


def test_project_prefix_is_exact_p1_never_touches_p10(services: Services) -> None:
    """GIVEN objects of p1, p10, p1-old and another user's p1 WHEN p1 is deleted THEN only p1's objects go."""
    doomed = [image("u", "p1", "s1"), audio("u", "p1", "s1"), output("u", "p1"), "users/u/projects/p1/stray.bin"]
    neighbours = [
        image("u", "p10", "s1"),
        output("u", "p10"),
        image("u", "p1-old", "s1"),
        image("u2", "p1", "s1"),
        "users/u/projects/p1",  # an object named like the prefix without its slash
        "users/u/p1/x.png",
    ]
    put_objects(services, doomed + neighbours)

    result = delete_target(project("u", "p1"), services=services).to_dict()

    assert keys_in(services) == set(neighbours)
    assert result["deleted_count"] == len(doomed)
    assert result["total_bytes"] == 10 * len(doomed)
    assert (result["failed_count"], result["errors"], result["complete"], result["continuation"]) == (0, [], True, None)
    assert result["prefix"] == "users/u/projects/p1/"
    assert "scene_id" not in result


def test_scene_prefix_is_exact_s1_never_touches_s10(services: Services) -> None:
    doomed = [image("u", "p", "s1"), audio("u", "p", "s1"), image("u", "p", "s1", "b.png")]
    neighbours = [image("u", "p", "s10"), image("u", "p", "s1x"), output("u", "p"), image("u", "p2", "s1")]
    put_objects(services, doomed + neighbours)

    result = delete_target(scene("u", "p", "s1"), services=services).to_dict()

    assert keys_in(services) == set(neighbours)
    assert result["deleted_count"] == 3
    assert result["scene_id"] == "s1"
    assert result["prefix"] == "users/u/projects/p/scenes/s1/"


def test_project_legacy_keys_of_its_remaining_scenes_go_shared_ones_stay(services: Services) -> None:
    """GIVEN project p's pre-image and its remaining scenes referencing legacy keys, one also used elsewhere
    WHEN p is deleted THEN p's own legacy objects go, the shared one and unrelated legacy objects stay."""
    put_objects(services, ["own-a.jpg", "media/own-b.jpg", "narr/own.mp3", "shared.jpg", "unrelated.jpg", "out.mp4"])
    put_objects(services, [image("u", "p", "s1")])
    db = services.db
    db.scenes.insert_many(
        [
            scene_doc("s1", "p", media="own-a.jpg", audio="narr/own.mp3"),
            scene_doc("s2", "p", media="shared.jpg"),
            scene_doc("s3", "p", media="media/own-b.jpg", audio=image("u", "other", "s9")),  # layout key elsewhere
            scene_doc("x1", "other", media="shared.jpg"),  # another project's scene still uses it
        ]
    )
    put_objects(services, [image("u", "other", "s9")])
    # The project document is gone; its pre-image (as the Atlas trigger sends it) named its legacy output.
    request = project("u", "p", pre_image_refs=("out.mp4",), source="atlas")

    result = delete_target(request, services=services).to_dict()

    assert keys_in(services) == {"shared.jpg", "unrelated.jpg", image("u", "other", "s9")}
    assert result["deleted_count"] == 5  # 4 legacy + 1 under the prefix
    assert result["warnings"] == []


def test_legacy_key_shared_with_a_sibling_scene_is_kept_when_one_scene_goes(services: Services) -> None:
    put_objects(services, ["both.jpg", "mine.mp3", image("u", "p", "s1")])
    add_project(services, "p", "u")
    add_scene(services, "s2", "p", media="both.jpg")
    request = scene(None, "p", "s1", pre_image_refs=("both.jpg", "mine.mp3"), source="atlas")

    result = delete_target(request, services=services).to_dict()

    assert keys_in(services) == {"both.jpg"}
    assert result["user_id"] == "u"  # resolved from the scene's project
    assert result["deleted_count"] == 2


def test_legacy_key_also_used_as_another_projects_output_is_kept(services: Services) -> None:
    put_objects(services, ["film.mp4"])
    add_project(services, "other", "u2", output="film.mp4")
    result = delete_target(project("u", "p", pre_image_refs=("film.mp4",)), services=services).to_dict()
    assert keys_in(services) == {"film.mp4"}
    assert result["deleted_count"] == 0


def test_missing_legacy_objects_are_not_counted(services: Services) -> None:
    """Existence is checked first: a referenced legacy object that is already gone counts as nothing."""
    put_objects(services, ["here.jpg"])
    result = delete_target(project("u", "p", pre_image_refs=("here.jpg", "gone.jpg")), services=services).to_dict()
    assert (result["deleted_count"], result["total_bytes"], result["failed_count"]) == (1, 10, 0)


def test_redelivery_reports_zero_and_no_error(services: Services) -> None:
    put_objects(services, ["legacy.jpg", image("u", "p", "s1"), output("u", "p")])
    add_scene(services, "s1", "p", media="legacy.jpg")
    request = project("u", "p", pre_image_refs=())
    first = delete_target(request, services=services).to_dict()
    second = delete_target(request, services=services).to_dict()
    assert first["deleted_count"] == 3
    assert (second["deleted_count"], second["total_bytes"], second["failed_count"], second["errors"]) == (0, 0, 0, [])
    assert second["complete"] is True


def test_scene_gone_without_pre_image_deletes_prefix_and_says_legacy_is_unknown(services: Services) -> None:
    """The app's SceneDeleted after the fact: the prefix goes, legacy refs cannot be known, nothing else goes."""
    put_objects(services, ["maybe-its.jpg", image("u", "p", "s1")])
    add_project(services, "p", "u")

    result = delete_target(scene("u", "p", "s1", source="eventbridge"), services=services).to_dict()

    assert keys_in(services) == {"maybe-its.jpg"}
    assert result["deleted_count"] == 1
    assert [w["code"] for w in result["warnings"]] == ["legacy_refs_unknown"]
    assert result["errors"] == []


def test_scene_still_existing_uses_its_document(services: Services) -> None:
    """A direct invocation while the scene document exists: its own legacy keys are the scene's."""
    put_objects(services, ["scene-own.jpg", image("u", "p", "s1")])
    add_project(services, "p", "u")
    add_scene(services, "s1", "p", media="scene-own.jpg")

    result = delete_target(scene("u", "p", "s1"), services=services).to_dict()

    assert keys_in(services) == set()
    assert [w["code"] for w in result["warnings"]] == ["document_exists"]


def test_scene_of_a_deleted_project_handles_its_legacy_keys_and_leaves_the_prefix(services: Services) -> None:
    """Atlas scene event whose project is gone: no owner, so no prefix; pre-image legacy keys still go."""
    put_objects(services, ["lonely.jpg", image("u", "p", "s1")])
    request = scene(None, "p", "s1", pre_image_refs=("lonely.jpg",), source="atlas")

    result = delete_target(request, services=services).to_dict()

    assert keys_in(services) == {image("u", "p", "s1")}  # left to the project's own deletion
    assert (result["user_id"], result["prefix"], result["deleted_count"]) == (None, None, 1)
    assert [w["code"] for w in result["warnings"]] == ["project_gone"]


def test_project_of_another_user_keeps_that_projects_legacy_objects(services: Services) -> None:
    """delete-project alice P where P is bob's live project: alice's (empty) prefix only, bob's data stays."""
    put_objects(services, ["bobs.jpg", image("bob", "P", "s1"), image("alice", "P", "s1")])
    add_project(services, "P", "bob")
    add_scene(services, "s1", "P", media="bobs.jpg")

    result = delete_target(project("alice", "P"), services=services).to_dict()

    assert keys_in(services) == {"bobs.jpg", image("bob", "P", "s1")}
    assert result["deleted_count"] == 1
    assert "owner_mismatch" in [w["code"] for w in result["warnings"]]


def test_objectid_project_and_default_owner(services: Services) -> None:
    """Projects keyed by ObjectId and without user_id (user ``default``) are found and owned correctly."""
    from bson import ObjectId

    oid = ObjectId()
    pid = str(oid)
    put_objects(services, ["old-out.mp4", "old-scene.jpg", output("default", pid)])
    add_project(services, oid, None, output="old-out.mp4")
    add_scene(services, ObjectId(), pid, media="old-scene.jpg")

    result = delete_target(project("default", pid), services=services).to_dict()

    assert keys_in(services) == set()
    assert result["deleted_count"] == 3


def test_wrong_database_in_change_event_deletes_nothing(services: Services) -> None:
    from scenestore.events import InvalidEvent

    put_objects(services, [image("u", "p", "s1")])
    with pytest.raises(InvalidEvent, match="wrong place"):
        delete_target(project("u", "p", database="elsewhere", source="atlas"), services=services)
    assert keys_in(services) == {image("u", "p", "s1")}
