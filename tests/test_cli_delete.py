"""The operator commands: delete-project, delete-scene, clear-bucket (contract section 7; usage has its own file).

A few runs go through the real ``scenestore`` console script in a subprocess (exit codes, one JSON document);
the rest invoke the click commands in-process against the same test bucket and database, which is faster.
Every refusal is checked to delete nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from scenestore.services import Services
from scenestore_cli.delete import clear_bucket_command, delete_project_command, delete_scene_command

from tests.support.seed import add_project, add_scene, image, keys_in, output, put_objects

SCENESTORE = str(Path(sys.executable).parent / "scenestore")


@pytest.fixture
def invoke(services: Services, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # as the console script sets it

    def run(command: Any, *args: str) -> Any:
        return CliRunner().invoke(command, list(args), catch_exceptions=False)

    return run


def run_cli(cli_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCENESTORE, *args], env=cli_env, capture_output=True, text=True, timeout=120, check=False)


# -- through the console script ---------------------------------------------------------------------


def test_delete_project_json_exit_0(services: Services, cli_env: dict[str, str]) -> None:
    put_objects(services, [image("u", "p1", "s1"), output("u", "p1"), "owned.jpg", image("u", "p10", "s1")])
    add_scene(services, "s1", "p1", media="owned.jpg")

    done = run_cli(cli_env, "delete-project", "u", "p1", "--json")

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # exactly one JSON document
    assert (result["deleted_count"], result["failed_count"], result["complete"]) == (3, 0, True)
    assert result["total_bytes"] == 30
    assert keys_in(services) == {image("u", "p10", "s1")}


def test_invalid_id_exits_2_and_deletes_nothing(services: Services, cli_env: dict[str, str]) -> None:
    seeded = {image("u", "p", "s1")}
    put_objects(services, seeded)
    done = run_cli(cli_env, "delete-scene", "u", "p", "../s1", "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"] == "invalid_id"
    assert "Traceback" not in done.stderr
    assert keys_in(services) == seeded


def test_clear_bucket_wrong_confirm_exits_2_and_deletes_nothing(services: Services, cli_env: dict[str, str]) -> None:
    seeded = {image("u", "p", "s1"), "legacy.jpg"}
    put_objects(services, seeded)
    done = run_cli(cli_env, "clear-bucket", "--confirm", "some-other-bucket")
    assert done.returncode == 2
    assert "nothing deleted" in done.stderr
    assert keys_in(services) == seeded


# -- in-process ------------------------------------------------------------------------------------


def test_delete_scene_human_output_and_exit_0(services: Services, invoke: Any) -> None:
    put_objects(services, [image("u", "p", "s1"), image("u", "p", "s10")])
    add_project(services, "p", "u")
    done = invoke(delete_scene_command, "u", "p", "s1")
    assert done.exit_code == 0
    assert "deleted 1 object (" in done.output
    assert "legacy_refs_unknown" in done.output  # the scene document is gone: said, not hidden
    assert keys_in(services) == {image("u", "p", "s10")}


@pytest.mark.parametrize(
    ("command", "args"),
    [
        (delete_project_command, ["u", "p/1"]),
        (delete_project_command, ["../u", "p"]),
        (delete_project_command, ["u", ".p"]),
        (delete_scene_command, ["u", "p", "s 1"]),
        (delete_scene_command, ["u", "", "s1"]),
        (delete_project_command, ["u"]),  # missing argument: click's usage error
    ],
)
def test_delete_refusals_exit_2_and_delete_nothing(
    services: Services, invoke: Any, command: Any, args: list[str]
) -> None:
    seeded = {image("u", "p", "s1"), image("u", "p", "s-1")}
    put_objects(services, seeded)
    done = invoke(command, *args, "--json")
    assert done.exit_code == 2
    assert keys_in(services) == seeded


def test_delete_with_failures_exits_1(services: Services, invoke: Any) -> None:
    """Injected per-key failure (the local S3 server never fails a key): partial failure is exit 1."""
    from scenestore.services import use_services

    from tests.support.s3faults import FaultyS3, with_s3

    put_objects(services, [image("u", "p", "s1"), image("u", "p", "s2")])
    faulty = FaultyS3(services.s3)
    faulty.fail_keys({image("u", "p", "s2")}, "AccessDenied")
    with use_services(with_s3(services, faulty)):
        done = invoke(delete_project_command, "u", "p", "--json")
    assert done.exit_code == 1
    result = json.loads(done.output)
    assert (result["deleted_count"], result["failed_count"]) == (1, 1)
    assert result["errors"][0]["code"] == "AccessDenied"


def test_clear_bucket_dry_run_counts_and_deletes_nothing(services: Services, invoke: Any) -> None:
    seeded = {image("u", "p", "s1"), "legacy.jpg", "media/x.png"}
    put_objects(services, seeded)
    done = invoke(clear_bucket_command, "--confirm", services.settings.bucket, "--dry-run", "--json")
    assert done.exit_code == 0
    result = json.loads(done.output)
    assert (result["dry_run"], result["object_count"], result["total_bytes"], result["deleted_count"]) == (
        True,
        3,
        30,
        0,
    )
    assert keys_in(services) == seeded


def test_clear_bucket_prefix_limits_it(services: Services, invoke: Any) -> None:
    put_objects(services, ["media/a.png", "media/b.png", "media2/c.png", "mediaX.png", image("u", "p", "s1")])
    done = invoke(clear_bucket_command, "--confirm", services.settings.bucket, "--prefix", "media/")
    assert done.exit_code == 0
    assert "deleted 2, failed 0, bytes 20" in done.output
    assert keys_in(services) == {"media2/c.png", "mediaX.png", image("u", "p", "s1")}


def test_clear_bucket_prefix_without_slash_is_refused(services: Services, invoke: Any) -> None:
    seeded = {"media/a.png", "media2/c.png"}
    put_objects(services, seeded)
    done = invoke(clear_bucket_command, "--confirm", services.settings.bucket, "--prefix", "media", "--json")
    assert done.exit_code == 2
    assert "must end with '/'" in json.loads(done.output)["message"]
    assert keys_in(services) == seeded


@pytest.mark.parametrize("args", [[], ["--confirm", ""], ["--confirm", "SCENESTORE-LOCAL"]])
def test_clear_bucket_other_refusals_delete_nothing(services: Services, invoke: Any, args: list[str]) -> None:
    seeded = {"legacy.jpg", image("u", "p", "s1")}
    put_objects(services, seeded)
    done = invoke(clear_bucket_command, *args)
    assert done.exit_code == 2
    assert keys_in(services) == seeded


def test_clear_bucket_whole_bucket(services: Services, invoke: Any) -> None:
    put_objects(services, ["legacy.jpg", image("u", "p", "s1"), "a/b/c"])
    done = invoke(clear_bucket_command, "--confirm", services.settings.bucket, "--json")
    assert done.exit_code == 0
    result = json.loads(done.output)
    assert (result["deleted_count"], result["failed_count"], result["total_bytes"]) == (3, 0, 30)
    assert keys_in(services) == set()
