"""``scenestore usage``: objects and bytes per user and project, legacy keys counted apart."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from scenestore.services import Services
from scenestore_cli.delete import usage_command
from scenestore_cli.usage import storage_usage

from tests.support.seed import image, output, project_doc, put_objects, scene_doc


def seed(services: Services) -> None:
    put_objects(services, [image("alice", "p1", "s1"), image("alice", "p1", "s2"), output("alice", "p1")])
    put_objects(services, [image("alice", "p10", "s1")], body=b"x" * 100)
    put_objects(services, [image("bob", "p1", "s1"), "users/bob/avatar.png"])
    put_objects(services, ["legacy/a.jpg", "b.mp3"], body=b"y" * 1000)
    services.db.projects.insert_many([project_doc("p1", "alice", output="b.mp3"), project_doc("q", "bob")])
    services.db.scenes.insert_many([scene_doc("s1", "p1", media="legacy/a.jpg", audio="gone.mp3")])


def test_whole_bucket_per_user_and_project_legacy_apart(services: Services) -> None:
    seed(services)
    report = storage_usage(services)

    users = {u["user_id"]: u for u in report["users"]}
    assert set(users) == {"alice", "bob"}
    assert [(p["project_id"], p["objects"], p["bytes"]) for p in users["alice"]["projects"]] == [
        ("p1", 3, 30),
        ("p10", 1, 100),
    ]
    assert (users["alice"]["objects"], users["alice"]["bytes"]) == (4, 130)
    assert users["bob"]["other"] == {"objects": 1, "bytes": 10}  # outside any project, still bob's
    assert (report["legacy"]["objects"], report["legacy"]["bytes"]) == (2, 2000)
    assert report["total"] == {"objects": 8, "bytes": 2150}


def test_one_user_with_the_legacy_objects_their_documents_reference(services: Services) -> None:
    seed(services)
    report = storage_usage(services, user_id="alice")

    assert [u["user_id"] for u in report["users"]] == ["alice"]
    assert report["total"] == {"objects": 4, "bytes": 130}
    assert report["legacy"]["objects"] == 2  # b.mp3 (project output) and legacy/a.jpg (scene media)
    assert report["legacy"]["bytes"] == 2000
    assert report["legacy"]["missing"] == 1  # gone.mp3 is referenced but absent


def test_cli_json_and_human(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(services)
    as_json = CliRunner().invoke(usage_command, ["--json"], catch_exceptions=False)
    assert as_json.exit_code == 0
    assert json.loads(as_json.output)["total"]["objects"] == 8
    human = CliRunner().invoke(usage_command, ["--user", "bob"], catch_exceptions=False)
    assert human.exit_code == 0
    assert "bob" in human.output and "legacy keys bob's documents reference" in human.output


def test_cli_invalid_user_exits_2(services: Services) -> None:
    done = CliRunner().invoke(usage_command, ["--user", "a/b", "--json"], catch_exceptions=False)
    assert done.exit_code == 2
    assert json.loads(done.output)["error"] == "invalid_id"
