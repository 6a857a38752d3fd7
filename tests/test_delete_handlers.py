"""The two Lambda handlers end to end: each event shape in, the contract's result out, EMF metrics emitted.

Events come from ``tests/events/``; Atlas samples are pointed at the test's database (``ns.db``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from scenestore.errors import InvalidRequest
from scenestore.events import InvalidEvent
from scenestore.services import Services

from functions.delete_project.handler import lambda_handler as delete_project
from functions.delete_scene.handler import lambda_handler as delete_scene
from tests.support.events import atlas_event, load_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.seed import add_project, audio, image, keys_in, output, put_objects, scene_doc

RESULT_KEYS = {"user_id", "project_id", "deleted_count", "failed_count", "total_bytes", "errors", "complete"}


def test_eventbridge_project_deleted(services: Services, lambda_context: FakeLambdaContext) -> None:
    put_objects(services, [image("user-1", "p1", "s1"), output("user-1", "p1"), image("user-1", "p10", "s1")])

    result = delete_project(load_event("eventbridge_project_deleted"), lambda_context)

    assert RESULT_KEYS | {"continuation"} <= set(result)
    assert (result["user_id"], result["project_id"], result["deleted_count"], result["complete"]) == (
        "user-1",
        "p1",
        2,
        True,
    )
    assert keys_in(services) == {image("user-1", "p10", "s1")}


def test_eventbridge_scene_deleted(services: Services, lambda_context: FakeLambdaContext) -> None:
    put_objects(services, [image("user-1", "p1", "s1"), audio("user-1", "p1", "s1"), image("user-1", "p1", "s10")])
    add_project(services, "p1", "user-1")

    result = delete_scene(load_event("eventbridge_scene_deleted"), lambda_context)

    assert (result["scene_id"], result["deleted_count"]) == ("s1", 2)
    assert keys_in(services) == {image("user-1", "p1", "s10")}


def test_atlas_project_delete_with_pre_image(services: Services, lambda_context: FakeLambdaContext) -> None:
    """The pre-image gives user_id and the legacy output; the remaining scene's legacy media goes too."""
    pid = "65a5091c2f8e4b0012345678"
    put_objects(services, [image("user-1", pid, "s1"), "renders/holiday.mp4", "media/kept.jpg", "scene-legacy.jpg"])
    services.db.scenes.insert_many(
        [scene_doc("s1", pid, media="scene-legacy.jpg"), scene_doc("z", "other", media="media/kept.jpg")]
    )

    result = delete_project(atlas_event("atlas_project_delete", services), lambda_context)

    assert (result["user_id"], result["project_id"], result["deleted_count"]) == ("user-1", pid, 3)
    assert keys_in(services) == {"media/kept.jpg"}


def test_atlas_scene_delete_with_pre_image(services: Services, lambda_context: FakeLambdaContext) -> None:
    put_objects(services, [image("user-1", "p1", "s1"), "media/beach.jpg", "narration-1.mp3", "media/other.jpg"])
    add_project(services, "p1", "user-1")

    result = delete_scene(atlas_event("atlas_scene_delete", services), lambda_context)

    assert (result["user_id"], result["scene_id"], result["deleted_count"], result["warnings"]) == (
        "user-1",
        "s1",
        3,
        [],
    )
    assert keys_in(services) == {"media/other.jpg"}


@pytest.mark.parametrize(
    ("handler", "name"),
    [(delete_project, "atlas_project_delete_no_preimage"), (delete_scene, "atlas_scene_delete_no_preimage")],
)
def test_atlas_without_pre_image_deletes_nothing_and_says_why(
    services: Services, lambda_context: FakeLambdaContext, handler: Any, name: str
) -> None:
    seeded = {image("user-1", "p1", "s1"), "media/beach.jpg"}
    put_objects(services, seeded)
    with pytest.raises(InvalidEvent) as caught:
        handler(atlas_event(name, services), lambda_context)
    assert caught.value.code == "pre_image_missing"
    assert keys_in(services) == seeded


def test_direct_invocations(services: Services, lambda_context: FakeLambdaContext) -> None:
    put_objects(services, [image("user-1", "p1", "s1"), image("user-1", "p1", "s2")])
    scene = delete_scene(load_event("direct_scene"), lambda_context)
    project = delete_project(load_event("direct_project"), lambda_context)
    assert (scene["deleted_count"], project["deleted_count"]) == (1, 1)
    assert keys_in(services) == set()


def test_bench_call_shape(services: Services, lambda_context: FakeLambdaContext) -> None:
    """bench/delete_prefix.py calls the handler with a bare {user_id, project_id}."""
    put_objects(services, [image("bench-user", "bench-project", f"s{i}") for i in range(20)])
    result = delete_project({"user_id": "bench-user", "project_id": "bench-project"}, lambda_context)
    assert (result["deleted_count"], result["total_bytes"], result["complete"]) == (20, 200, True)


def test_atlas_event_re_invoked_with_its_continuation(services: Services) -> None:
    """The runner's and the deployed wiring's re-invocation: the same event plus ``continuation``."""
    put_objects(services, [image("user-1", "p1", "s1"), "media/beach.jpg", "narration-1.mp3"])
    add_project(services, "p1", "user-1")
    event = atlas_event("atlas_scene_delete", services)
    results = []
    for _ in range(10):
        results.append(delete_scene(event, FakeLambdaContext(remaining_ms=10_000)))
        if results[-1]["complete"]:
            break
        event = {**event, "continuation": results[-1]["continuation"]}
    assert len(results) > 1
    assert sum(r["deleted_count"] for r in results) == 3
    assert keys_in(services) == set()


@pytest.mark.parametrize(
    ("handler", "event"),
    [
        (
            delete_project,
            {"detail-type": "SceneDeleted", "detail": {"user_id": "u", "project_id": "p", "scene_id": "s"}},
        ),
        (delete_project, {"user_id": "u", "project_id": "p", "scene_id": "s"}),
        (delete_scene, {"user_id": "u", "project_id": "p"}),
        (delete_project, {"user_id": "u", "project_id": "../p"}),
        (delete_project, {"something": "else"}),
        (delete_project, {"user_id": "u", "project_id": "p", "continuation": "garbage"}),
    ],
)
def test_refused_events_delete_nothing(
    services: Services, lambda_context: FakeLambdaContext, handler: Any, event: dict[str, Any]
) -> None:
    seeded = {image("u", "p", "s"), image("u", "p", "t")}
    put_objects(services, seeded)
    with pytest.raises(InvalidRequest):  # InvalidEvent for the event, InvalidRequest for the continuation
        handler(event, lambda_context)
    assert keys_in(services) == seeded


def test_emf_metrics_are_emitted(
    services: Services, lambda_context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    put_objects(services, [image("u", "p", "s1"), image("u", "p", "s2")])
    delete_project({"user_id": "u", "project_id": "p"}, lambda_context)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [line for line in lines if "_aws" in line]
    assert emf, "no EMF document on stdout"
    names = {m["Name"] for doc in emf for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"ObjectsDeleted", "BytesDeleted", "DeleteFailures", "DeleteDuration"} <= names
    doc = emf[-1]
    assert (doc["ObjectsDeleted"], doc["BytesDeleted"], doc["DeleteFailures"]) == ([2.0], [20.0], [0.0])
