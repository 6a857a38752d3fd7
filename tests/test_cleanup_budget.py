"""Time budget and continuations (contract section 5): stop before time runs out, resume without redoing work.

A Lambda context whose remaining time equals the handler's safety margin leaves a budget of zero, so each
invocation does exactly its one guaranteed unit of work (a legacy batch or one 1000-key prefix page).
Counting proves "exactly once": S3 reports a DeleteObjects of a missing key as deleted, so a key deleted
twice would push the summed ``deleted_count`` above the number of objects.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from scenestore.budget import Deadline
from scenestore.cleanup import DELETE_MARGIN_SECONDS, Continuation, delete_target, target_tag
from scenestore.errors import InvalidRequest
from scenestore.events import DeletionRequest
from scenestore.services import Services

from functions.delete_project.handler import lambda_handler as delete_project
from tests.support.lambda_context import FakeLambdaContext
from tests.support.seed import add_scene, image, keys_in, put_objects, scene_doc

ZERO_BUDGET_MS = int(DELETE_MARGIN_SECONDS * 1000)


def run_handler_until_complete(event: dict[str, Any], limit: int = 20) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    current = dict(event)
    for _ in range(limit):
        result = delete_project(current, FakeLambdaContext(remaining_ms=ZERO_BUDGET_MS))
        results.append(result)
        if result["complete"]:
            return results
        assert isinstance(result["continuation"], str) and result["continuation"]
        current = {**event, "continuation": result["continuation"]}
    raise AssertionError(f"not complete after {limit} invocations")


@pytest.mark.slow
def test_tiny_budget_takes_several_invocations_and_deletes_everything_exactly_once(services: Services) -> None:
    """GIVEN 1005 objects under the prefix and 3 owned legacy objects, and no time left in any invocation
    WHEN the handler is re-invoked with each continuation THEN it takes several invocations, the union deletes
    every object once, and the counts add up exactly."""
    prefix_keys = [image("u", "p", f"s{i % 7}", f"{i:05d}.png") for i in range(1005)]
    legacy = ["old/a.jpg", "old/b.jpg", "old/c.mp3"]
    written = put_objects(services, prefix_keys + legacy + ["keep.jpg", image("u", "p2", "s1")])
    services.db.scenes.insert_many(
        [scene_doc("s1", "p", media="old/a.jpg", audio="old/c.mp3"), scene_doc("s2", "p", media="old/b.jpg")]
    )

    results = run_handler_until_complete({"user_id": "u", "project_id": "p"})

    assert len(results) >= 3
    assert all(not r["complete"] for r in results[:-1])
    assert sum(r["deleted_count"] for r in results) == len(prefix_keys) + len(legacy)
    assert sum(r["total_bytes"] for r in results) == written - 20
    assert sum(r["failed_count"] for r in results) == 0
    assert max(r["deleted_count"] for r in results) <= 1000  # one page per invocation, nothing redone
    assert keys_in(services) == {"keep.jpg", image("u", "p2", "s1")}
    assert results[-1]["continuation"] is None


def test_legacy_phase_resumes_batch_by_batch(services: Services) -> None:
    """Legacy keys are handled in sorted batches; each continuation skips the batches already handled."""
    legacy = [f"legacy/{c}.jpg" for c in "abcde"]
    put_objects(services, [*legacy, "legacy/shared.jpg", image("u", "p", "s1")])
    add_scene(services, "other", "q", media="legacy/shared.jpg")
    request = DeletionRequest(
        target="project", user_id="u", project_id="p", pre_image_refs=(*legacy, "legacy/shared.jpg"), source="atlas"
    )
    per_call: list[int] = []
    continuation = None
    for _ in range(20):
        attempt = dataclasses.replace(request, continuation=continuation)
        result = delete_target(attempt, services=services, deadline=Deadline.after(0), legacy_batch=2)
        per_call.append(result.report.deleted_count)
        continuation = result.report.continuation
        if result.report.complete:
            break
    # 6 sorted legacy keys in batches of 2 (the last batch keeps the shared key) -> 3 legacy invocations,
    # one for the prefix page, and a last one that finds the listing exhausted.
    assert per_call == [2, 2, 1, 1, 0]
    assert keys_in(services) == {"legacy/shared.jpg"}


def test_continuation_is_opaque_and_bound_to_its_target(services: Services) -> None:
    put_objects(services, [image("u", "p", "s1"), image("u", "q", "s1")])
    token = Continuation("prefix", image("u", "p", "s1"), target_tag(DeletionRequest("project", "p", "u"))).encode()
    assert "/" not in token and "=" not in token

    with pytest.raises(InvalidRequest, match="belongs to"):
        delete_target(DeletionRequest("project", "q", "u", continuation=token), services=services)
    with pytest.raises(InvalidRequest, match="not one this function returned"):
        delete_target(DeletionRequest("project", "p", "u", continuation="not-a-token"), services=services)
    assert len(keys_in(services)) == 2  # refusals delete nothing


def test_continuation_outside_the_prefix_is_refused(services: Services) -> None:
    put_objects(services, [image("u", "p", "s1")])
    tag = target_tag(DeletionRequest("project", "p", "u"))
    token = Continuation("prefix", "users/u/projects/zzz/", tag).encode()
    with pytest.raises(InvalidRequest, match="does not lie under"):
        delete_target(DeletionRequest("project", "p", "u", continuation=token), services=services)
    assert keys_in(services) == {image("u", "p", "s1")}


def test_generous_budget_finishes_in_one_invocation(services: Services) -> None:
    put_objects(services, [image("u", "p", f"s{i}") for i in range(30)])
    result = delete_project({"user_id": "u", "project_id": "p"}, FakeLambdaContext())
    assert (result["complete"], result["continuation"], result["deleted_count"]) == (True, None, 30)
