"""The local event runner: deleting a document in the local stack removes its objects within seconds.

Real change streams on SecantusDB with pre-images (enabled by ``bootstrap.prepare``), the real handlers,
the resume token stored in ``scenestore_event_runner``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from scenestore.services import Services
from scenestore_cli.local.event_runner import STATE_COLLECTION, EventRunner, change_to_event, invoke_until_complete

from tests.support.seed import add_project, image, keys_in, output, project_doc, put_objects, scene_doc

pytestmark = pytest.mark.timeout(120)


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:.0f}s")
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.fixture
def runner(services: Services) -> Iterator[EventRunner]:
    started = EventRunner(services, poll_ms=200).start()
    wait_for(lambda: started.stored_token() is not None)  # watching from "now"
    yield started
    started.stop()


def test_deleting_a_project_document_removes_its_objects(services: Services, runner: EventRunner) -> None:
    """GIVEN a project with objects, a remaining scene with an owned legacy key, and neighbours
    WHEN the project document is deleted THEN its prefix and owned legacy object are gone within seconds."""
    put_objects(services, [image("u", "p1", "s1"), output("u", "p1"), "owned.jpg", "shared.jpg"])
    put_objects(services, [image("u", "p10", "s1")])
    services.db.projects.insert_many([project_doc("p1", "u", output="shared.jpg"), project_doc("p10", "u")])
    services.db.scenes.insert_many(
        [scene_doc("s1", "p1", media="owned.jpg"), scene_doc("x", "p10", media="shared.jpg")]
    )

    services.db.projects.delete_one({"_id": "p1"})

    took = wait_for(lambda: keys_in(services) == {image("u", "p10", "s1"), "shared.jpg"})
    assert took < 10


def test_deleting_a_scene_document_removes_its_objects(services: Services, runner: EventRunner) -> None:
    put_objects(services, [image("u", "p", "s1"), image("u", "p", "s10"), "scene-legacy.mp3"])
    add_project(services, "p", "u")
    services.db.scenes.insert_many([scene_doc("s1", "p", audio="scene-legacy.mp3"), scene_doc("s10", "p")])

    services.db.scenes.delete_one({"_id": "s1"})

    wait_for(lambda: keys_in(services) == {image("u", "p", "s10")})


def test_restart_resumes_from_the_stored_token(services: Services) -> None:
    """A delete made while the runner is stopped is handled by the next runner (the token survives)."""
    first = EventRunner(services, poll_ms=200).start()
    wait_for(lambda: first.stored_token() is not None)
    put_objects(services, [image("u", "a", "s1"), image("u", "b", "s1")])
    services.db.projects.insert_many([project_doc("a", "u"), project_doc("b", "u")])
    services.db.projects.delete_one({"_id": "a"})
    wait_for(lambda: keys_in(services) == {image("u", "b", "s1")})
    first.stop()
    assert not first.running
    token_after_a = first.stored_token()
    assert services.db[STATE_COLLECTION].count_documents({}) == 1

    services.db.projects.delete_one({"_id": "b"})  # nobody is watching now
    time.sleep(0.5)
    assert keys_in(services) == {image("u", "b", "s1")}

    second = EventRunner(services, poll_ms=200).start()
    try:
        wait_for(lambda: keys_in(services) == set())
        wait_for(lambda: second.stored_token() != token_after_a)
        assert second.handled == 1  # only b: a was not handled twice
    finally:
        second.stop()


def test_stop_is_prompt_when_idle(services: Services) -> None:
    runner = EventRunner(services, poll_ms=200).start()
    wait_for(lambda: runner.stored_token() is not None)
    started = time.monotonic()
    runner.stop()
    assert time.monotonic() - started < 3
    assert not runner.running


def test_a_refused_event_is_skipped_and_the_runner_goes_on(services: Services) -> None:
    """A change the handler refuses (a project id that is not a valid id) is logged and skipped."""
    put_objects(services, [image("u", "ok", "s1")])
    services.db.projects.insert_many([project_doc("bad id!", "u"), project_doc("ok", "u")])
    runner = EventRunner(services, poll_ms=200).start()
    try:
        wait_for(lambda: runner.stored_token() is not None)
        services.db.projects.delete_one({"_id": "bad id!"})
        services.db.projects.delete_one({"_id": "ok"})
        wait_for(lambda: keys_in(services) == set())
        assert runner.running
    finally:
        runner.stop()


def test_change_becomes_the_atlas_shaped_event(services: Services) -> None:
    from bson import ObjectId

    oid = ObjectId()
    change = {
        "_id": {"_data": "00"},
        "operationType": "delete",
        "ns": {"db": "autoshorts", "coll": "projects"},
        "documentKey": {"_id": oid},
        "fullDocumentBeforeChange": {"_id": oid, "user_id": "u"},
    }
    event = change_to_event(change)
    assert event["source"].startswith("aws.partner/mongodb.com/stitch.trigger/")
    assert event["detail-type"] == "MongoDB Database Trigger for autoshorts.projects"
    assert event["detail"]["documentKey"]["_id"] == {"$oid": str(oid)}


def test_invoke_until_complete_re_invokes_with_the_same_event_plus_continuation() -> None:
    calls: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event)
        n = len(calls)
        return {
            "user_id": "u",
            "project_id": "p",
            "deleted_count": 10,
            "failed_count": 0,
            "total_bytes": 100,
            "errors": [],
            "complete": n == 3,
            "continuation": None if n == 3 else f"c{n}",
            "prefix": "users/u/projects/p/",
            "warnings": [],
        }

    total = invoke_until_complete(handler, {"detail-type": "ProjectDeleted", "detail": {}})
    assert [c.get("continuation") for c in calls] == [None, "c1", "c2"]
    assert all(c["detail-type"] == "ProjectDeleted" for c in calls)
    assert (total["deleted_count"], total["total_bytes"], total["invocations"], total["complete"]) == (30, 300, 3, True)


def test_stopping_in_the_middle_of_a_deletion_leaves_it_for_the_next_runner(services: Services) -> None:
    """A deletion interrupted by ``stop()`` is not acknowledged: the next runner handles it from the start.

    A deletion long enough to be interrupted needs tens of thousands of objects, so the first runner gets a
    stub handler that never completes (the one stand-in here: it plays "a very long deletion"); the second
    runner uses the real handler.
    """
    put_objects(services, [image("u", "p", "s1")])
    add_project(services, "p", "u")
    calls: list[dict[str, Any]] = []

    def endless(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event)
        time.sleep(0.05)
        return {
            "user_id": "u",
            "project_id": "p",
            "deleted_count": 0,
            "failed_count": 0,
            "total_bytes": 0,
            "errors": [],
            "complete": False,
            "continuation": f"c{len(calls)}",
        }

    first = EventRunner(services, poll_ms=200, handlers={"project": endless}).start()
    wait_for(lambda: first.stored_token() is not None)
    token_before = first.stored_token()
    services.db.projects.delete_one({"_id": "p"})
    wait_for(lambda: len(calls) >= 3)
    first.stop()
    assert not first.running
    assert first.stored_token() == token_before  # not acknowledged
    assert calls[1]["continuation"] == "c1" and calls[1]["detail"] == calls[0]["detail"]

    second = EventRunner(services, poll_ms=200).start()
    try:
        wait_for(lambda: keys_in(services) == set())
        wait_for(lambda: second.stored_token() != token_before)
    finally:
        second.stop()
