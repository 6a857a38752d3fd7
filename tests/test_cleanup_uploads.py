"""Deleting a project or a scene aborts the multipart uploads in progress under its prefix (contract section 5).

The uploads are real ones on the local S3 server (``CreateMultipartUpload`` and a part each); what the deletion
leaves is read back with ``ListMultipartUploads``. Both paths are covered: the delete handlers as an event
reaches them, and ``scenestore delete-project`` / ``delete-scene``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from scenestore.multipart import COLLECTION, OPEN
from scenestore.services import Services
from scenestore_cli.delete import delete_project_command, delete_scene_command

from functions.delete_project.handler import lambda_handler as delete_project
from functions.delete_scene.handler import lambda_handler as delete_scene
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.s3faults import FaultyS3, with_s3
from tests.support.seed import image, keys_in, put_objects

#: The user of the sample events (tests/events/eventbridge_*_deleted.json: user-1, project p1, scene s1).
USER = "user-1"


def start_upload(services: Services, key: str, *, recorded: bool = False) -> str:
    """An upload in progress on the local S3 server (one part sent); ``recorded``: with the service's record,
    as ``POST /projects/{p}/multipart`` leaves it."""
    s3, bucket = services.s3, services.settings.bucket
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="video/mp4")["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * 1024)
    if recorded:
        services.db[COLLECTION].insert_one({"_id": upload_id, "key": key, "state": OPEN})
    return str(upload_id)


def uploads_in_progress(services: Services) -> set[str]:
    listed = services.s3.list_multipart_uploads(Bucket=services.settings.bucket).get("Uploads", [])
    return {str(u["Key"]) for u in listed}


def seed(services: Services) -> dict[str, set[str]]:
    """Uploads under p1's scene s1, under p1 elsewhere, and under neighbours (p10, another user) that keep theirs."""
    scene = {image(USER, "p1", "s1", "big.mp4")}
    project = {*scene, image(USER, "p1", "s10", "big.mp4"), f"users/{USER}/projects/p1/output/final.mp4"}
    others = {image(USER, "p10", "s1", "big.mp4"), "users/u2/projects/p1/o.mp4"}
    for key in sorted(project | others):
        start_upload(services, key, recorded=key in scene)
    put_objects(services, [image(USER, "p1", "s1")])
    return {"scene": scene, "project": project, "others": others}


def test_the_project_event_aborts_its_uploads_and_counts_them(services: Services) -> None:
    uploads = seed(services)

    result = delete_project(load_event("eventbridge_project_deleted"), FakeLambdaContext())  # user u, project p1

    assert result["complete"] is True
    assert result["aborted_uploads"] == len(uploads["project"]) == 3
    assert uploads_in_progress(services) == uploads["others"]
    record = services.db[COLLECTION].find_one({"key": image(USER, "p1", "s1", "big.mp4")})
    assert record is not None and record["state"] == "aborted", "the API must no longer offer the aborted upload"
    assert keys_in(services) == set()


def test_the_scene_event_aborts_only_the_scenes_uploads(services: Services) -> None:
    uploads = seed(services)

    result = delete_scene(load_event("eventbridge_scene_deleted"), FakeLambdaContext())  # u / p1 / s1

    assert result["aborted_uploads"] == 1
    assert uploads_in_progress(services) == (uploads["project"] | uploads["others"]) - uploads["scene"]


def test_a_redelivered_event_aborts_nothing_more(services: Services) -> None:
    seed(services)
    event = load_event("eventbridge_project_deleted")
    assert delete_project(event, FakeLambdaContext())["aborted_uploads"] == 3
    assert delete_project(event, FakeLambdaContext())["aborted_uploads"] == 0


def test_an_upload_the_store_refuses_to_abort_is_a_failure_of_the_deletion(services: Services) -> None:
    """A fault injected on purpose (the local store aborts whatever it is asked to): the refused upload is
    reported under its key, and the deletion is not complete until it is aborted."""
    from scenestore.cleanup import delete_target
    from scenestore.events import DeletionRequest

    seed(services)
    faulty = FaultyS3(services.s3)
    faulty.fail("abort_multipart_upload", "AccessDenied", keys={f"users/{USER}/projects/p1/output/final.mp4"})

    result = delete_target(DeletionRequest("project", "p1", USER), services=with_s3(services, faulty)).to_dict()

    assert (result["aborted_uploads"], result["failed_count"]) == (2, 1)
    assert result["errors"][0]["key"] == f"users/{USER}/projects/p1/output/final.mp4"
    assert result["errors"][0]["code"] == "AccessDenied"
    assert result["complete"] is False, "a recheck follows, which aborts it again"


@pytest.fixture
def invoke(services: Services, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    return lambda command, *args: CliRunner().invoke(command, list(args), catch_exceptions=False)


def test_the_cli_aborts_the_uploads_and_reports_them(services: Services, invoke: Any) -> None:
    uploads = seed(services)

    scene = invoke(delete_scene_command, USER, "p1", "s1", "--json")
    project = invoke(delete_project_command, USER, "p1", "--json")

    assert scene.exit_code == 0 and project.exit_code == 0, scene.output + project.output
    assert json.loads(scene.output)["aborted_uploads"] == 1
    assert json.loads(project.output)["aborted_uploads"] == 2  # the scene's went with the scene
    assert uploads_in_progress(services) == uploads["others"]
    human = invoke(delete_project_command, "u2", "p1")
    assert "aborted 1 upload in progress" in human.output, human.output


def test_the_cli_dry_run_counts_the_uploads_and_aborts_none(services: Services, invoke: Any) -> None:
    uploads = seed(services)

    done = invoke(delete_project_command, USER, "p1", "--dry-run", "--json")

    assert done.exit_code == 0 and json.loads(done.output)["aborted_uploads"] == 3
    assert uploads_in_progress(services) == uploads["project"] | uploads["others"]
