"""Deleting a project or a scene against a server that checks signatures: the handlers' batched deletes
remove exactly the prefix (``p1/`` never ``p10/``), as the moto tests say they do."""

from __future__ import annotations

import pytest
from scenestore.services import Services

from functions.delete_project.handler import lambda_handler as delete_project
from functions.delete_scene.handler import lambda_handler as delete_scene
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.seed import add_project, audio, image, keys_in, layout_keys, output, put_objects

pytestmark = [pytest.mark.s3_peer]


def test_delete_project_removes_the_prefix_and_nothing_else(
    services: Services, lambda_context: FakeLambdaContext
) -> None:
    many = layout_keys(1500, project="p1", user="user-1")  # more than one 1000-key DeleteObjects batch
    kept = [image("user-1", "p10", "s1"), image("user-2", "p1", "s1")]
    put_objects(services, [*many, output("user-1", "p1"), *kept])

    result = delete_project(load_event("eventbridge_project_deleted"), lambda_context)

    assert (result["project_id"], result["deleted_count"], result["failed_count"]) == ("p1", 1501, 0)
    assert result["complete"] is True
    assert keys_in(services) == set(kept)


def test_delete_scene_removes_the_scene_prefix_and_nothing_else(
    services: Services, lambda_context: FakeLambdaContext
) -> None:
    put_objects(services, [image("user-1", "p1", "s1"), audio("user-1", "p1", "s1"), image("user-1", "p1", "s10")])
    add_project(services, "p1", "user-1")

    result = delete_scene(load_event("eventbridge_scene_deleted"), lambda_context)

    assert (result["scene_id"], result["deleted_count"]) == ("s1", 2)
    assert keys_in(services) == {image("user-1", "p1", "s10")}
