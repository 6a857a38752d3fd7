"""Parsing the three deletion-event shapes of contract section 5 (no servers needed).

Every shape a delete function accepts becomes one ``DeletionRequest``; everything else is refused with
``InvalidEvent`` before any object is touched (the handler tests show that nothing is deleted).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from scenestore.events import DeletionRequest, InvalidEvent, classify, parse_deletion_event

from tests.support.events import load_event


def test_eventbridge_project_deleted() -> None:
    request = parse_deletion_event(load_event("eventbridge_project_deleted"), expect="project")
    assert request == DeletionRequest(target="project", user_id="user-1", project_id="p1", source="eventbridge")


def test_eventbridge_scene_deleted() -> None:
    request = parse_deletion_event(load_event("eventbridge_scene_deleted"), expect="scene")
    assert (request.target, request.user_id, request.project_id, request.scene_id) == ("scene", "user-1", "p1", "s1")
    assert request.pre_image_refs is None


def test_eventbridge_minimal_envelope_is_enough() -> None:
    """GIVEN only the contract's keys WHEN parsed THEN accepted (rules and tests may trim the envelope)."""
    event = {"detail-type": "ProjectDeleted", "detail": {"user_id": "u", "project_id": "p"}}
    assert parse_deletion_event(event, expect="project").project_id == "p"


def test_atlas_project_delete_with_extended_json_object_id_and_pre_image() -> None:
    request = parse_deletion_event(load_event("atlas_project_delete"), expect="project")
    assert request.source == "atlas"
    assert request.project_id == "65a5091c2f8e4b0012345678"  # {"$oid": ...} -> its hex string
    assert request.user_id == "user-1"  # from fullDocumentBeforeChange
    assert request.pre_image_refs == ("renders/holiday.mp4",)
    assert request.database == "autoshorts"


def test_atlas_scene_delete_with_string_id_and_pre_image() -> None:
    request = parse_deletion_event(load_event("atlas_scene_delete"), expect="scene")
    assert (request.project_id, request.scene_id) == ("p1", "s1")
    assert request.user_id is None  # scenes carry no user_id: read from the project at cleanup time
    assert request.pre_image_refs == ("media/beach.jpg", "narration-1.mp3")


def test_atlas_project_without_user_id_belongs_to_default() -> None:
    event = load_event("atlas_project_delete")
    del event["detail"]["fullDocumentBeforeChange"]["user_id"]
    assert parse_deletion_event(event, expect="project").user_id == "default"


@pytest.mark.parametrize(
    ("name", "expect"), [("atlas_project_delete_no_preimage", "project"), ("atlas_scene_delete_no_preimage", "scene")]
)
def test_atlas_without_pre_image_is_refused_with_the_reason(name: str, expect: Any) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_deletion_event(load_event(name), expect=expect)
    assert caught.value.code == "pre_image_missing"
    assert "fullDocumentBeforeChange" in caught.value.message
    assert "pre-images" in caught.value.message


def test_atlas_non_delete_operation_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="'update', not a delete"):
        parse_deletion_event(load_event("atlas_scene_update"), expect="scene")


def test_atlas_other_collection_is_refused() -> None:
    event = load_event("atlas_scene_delete")
    event["detail"]["ns"]["coll"] = "users"
    with pytest.raises(InvalidEvent, match="only projects and scenes"):
        parse_deletion_event(event, expect="scene")


def test_atlas_pre_image_of_another_document_is_refused() -> None:
    event = load_event("atlas_scene_delete")
    event["detail"]["fullDocumentBeforeChange"]["_id"] = "s2"
    with pytest.raises(InvalidEvent, match="does not match documentKey"):
        parse_deletion_event(event, expect="scene")


def test_direct_shapes_and_continuation() -> None:
    project = parse_deletion_event(load_event("direct_project"), expect="project")
    assert (project.target, project.user_id, project.project_id, project.scene_id) == ("project", "user-1", "p1", None)
    scene = parse_deletion_event(load_event("direct_scene", continuation="abc"), expect="scene")
    assert (scene.scene_id, scene.continuation) == ("s1", "abc")


def test_any_shape_carries_a_continuation_for_re_invocation() -> None:
    event = load_event("atlas_scene_delete", continuation="tok")
    assert parse_deletion_event(event, expect="scene").continuation == "tok"


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("eventbridge_scene_deleted", "project"),
        ("atlas_scene_delete", "project"),
        ("direct_scene", "project"),
        ("eventbridge_project_deleted", "scene"),
        ("atlas_project_delete", "scene"),
        ("direct_project", "scene"),
    ],
)
def test_a_function_refuses_the_other_targets_event(name: str, expect: Any) -> None:
    """A scene event routed to delete-project must never delete the whole project (and vice versa)."""
    with pytest.raises(InvalidEvent, match=f"delete-{expect} received"):
        parse_deletion_event(load_event(name), expect=expect)


def test_direct_event_with_a_misspelt_key_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="sceneId"):
        parse_deletion_event({"user_id": "u", "project_id": "p", "sceneId": "s"}, expect="project")


@pytest.mark.parametrize(
    "event",
    [
        {"user_id": "../other", "project_id": "p"},
        {"user_id": "u", "project_id": "p/1"},
        {"user_id": "u", "project_id": ".hidden"},
        {"user_id": "u", "project_id": ""},
        {"user_id": "u", "project_id": "x" * 129},
        {"user_id": 7, "project_id": "p"},
        {"detail-type": "ProjectDeleted", "detail": {"user_id": "u", "project_id": "a b"}},
    ],
)
def test_invalid_ids_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_deletion_event(event, expect="project")
    assert caught.value.code == "invalid_id"


def test_invalid_ids_in_atlas_documents_are_refused() -> None:
    event = load_event("atlas_scene_delete")
    event["detail"]["documentKey"]["_id"] = "s/../../x"
    with pytest.raises(InvalidEvent):
        parse_deletion_event(event, expect="scene")
    event = load_event("atlas_project_delete")
    event["detail"]["fullDocumentBeforeChange"]["user_id"] = "a/b"
    with pytest.raises(InvalidEvent) as caught:
        parse_deletion_event(event, expect="project")
    assert caught.value.code == "invalid_id"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"hello": "world"},
        [],
        "ProjectDeleted",
        {"detail-type": "ProjectCreated", "detail": {"user_id": "u", "project_id": "p"}},
        {"detail-type": "SceneDeleted", "detail": {"user_id": "u", "project_id": "p"}},
        {"detail-type": "ProjectDeleted", "detail": {"user_id": "u", "project_id": "p", "scene_id": "s"}},
        {"detail-type": "ProjectDeleted", "detail": {"project_id": "p"}},
    ],
)
def test_unknown_or_incomplete_shapes_are_refused(event: Any) -> None:
    with pytest.raises(InvalidEvent):
        parse_deletion_event(event, expect="project")


def test_classify_names_each_shape() -> None:
    assert classify(load_event("eventbridge_project_deleted")) == "eventbridge"
    assert classify(load_event("atlas_project_delete")) == "atlas"
    assert classify(load_event("direct_project")) == "direct"


def test_sample_events_are_not_mutated_by_parsing() -> None:
    event = load_event("atlas_project_delete")
    before = copy.deepcopy(event)
    parse_deletion_event(event, expect="project")
    assert event == before
