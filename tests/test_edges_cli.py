"""Operator guards at the CLI's edges (issue 13, contract section 7 "Additions (turn 2)").

- ``delete-project`` / ``delete-scene`` refuse while the document exists unless ``--force``; ``--dry-run``
  counts and deletes nothing; neither document nor objects is said plainly;
- an option given twice is bad usage for every command;
- MongoDB or S3 unreachable (a closed port): one line naming it, exit 1, one JSON document with ``--json``.

Everything runs the real ``scenestore`` console script against the session's local stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from scenestore.keys import output_key
from scenestore.services import Services
from scenestore_cli.local.servers import free_port

from tests.support.seed import BODY, add_project, add_scene, image, keys_in, put_objects

SCENESTORE = str(Path(sys.executable).parent / "scenestore")


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCENESTORE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


# -- delete-project / delete-scene guards -----------------------------------------------------------


def test_delete_project_refuses_while_its_document_exists(services: Services, cli_env: dict[str, str]) -> None:
    seeded = {image("u", "p", "s1"), output_key("u", "p", "final.mp4")}
    put_objects(services, seeded)
    add_project(services, "p", "u")

    done = run_cli(cli_env, "delete-project", "u", "p", "--json")

    assert done.returncode == 2, done.stderr
    body = json.loads(done.stdout)
    assert body["error"] == "usage"
    assert "still exists" in body["message"] and "--force" in body["message"]
    assert keys_in(services) == seeded


def test_delete_project_force_deletes_a_live_project(services: Services, cli_env: dict[str, str]) -> None:
    put_objects(services, [image("u", "p", "s1"), image("u", "p10", "s1")])
    add_project(services, "p", "u")
    done = run_cli(cli_env, "delete-project", "u", "p", "--force", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted_count"] == 1
    assert keys_in(services) == {image("u", "p10", "s1")}


def test_delete_scene_refuses_while_its_document_exists(services: Services, cli_env: dict[str, str]) -> None:
    seeded = {image("u", "p", "s1"), "legacy/s1.png"}
    put_objects(services, seeded)
    add_project(services, "p", "u")
    add_scene(services, "s1", "p", media="legacy/s1.png")
    done = run_cli(cli_env, "delete-scene", "u", "p", "s1")
    assert done.returncode == 2
    assert "scene s1 of project p (user u) still exists" in done.stderr
    assert "Traceback" not in done.stderr
    assert keys_in(services) == seeded


@pytest.mark.parametrize("with_document", [True, False])
def test_dry_run_reports_objects_and_bytes_and_deletes_nothing(
    services: Services, cli_env: dict[str, str], with_document: bool
) -> None:
    seeded = {image("u", "p", "s1"), image("u", "p", "s2"), "legacy/only-p.png", image("u", "p10", "s1")}
    put_objects(services, seeded)
    if with_document:
        add_project(services, "p", "u")
        add_scene(services, "s1", "p", media="legacy/only-p.png")

    done = run_cli(cli_env, "delete-project", "u", "p", "--dry-run", "--json")

    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    expected = 3 if with_document else 2  # the legacy key is known only from the live documents
    assert (body["dry_run"], body["deleted_count"], body["total_bytes"]) == (True, expected, expected * len(BODY))
    assert body["document_exists"] is with_document
    assert keys_in(services) == seeded

    human = run_cli(cli_env, "delete-project", "u", "p", "--dry-run")
    assert human.returncode == 0
    assert f"would delete {expected} objects" in human.stdout and "nothing deleted" in human.stdout
    assert keys_in(services) == seeded


def test_dry_run_of_a_live_scene(services: Services, cli_env: dict[str, str]) -> None:
    seeded = {image("u", "p", "s1"), "legacy/s1.png"}
    put_objects(services, seeded)
    add_project(services, "p", "u")
    add_scene(services, "s1", "p", media="legacy/s1.png")
    done = run_cli(cli_env, "delete-scene", "u", "p", "s1", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted_count"] == 2
    assert keys_in(services) == seeded


@pytest.mark.parametrize(
    "args",
    [["delete-project", "u", "typo"], ["delete-scene", "u", "p", "typo"], ["delete-project", "u", "typo", "--dry-run"]],
)
def test_no_document_and_no_objects_is_said_plainly(
    services: Services, cli_env: dict[str, str], args: list[str]
) -> None:
    seeded = {image("u", "p", "s1")}
    put_objects(services, seeded)
    done = run_cli(cli_env, *args)
    assert done.returncode == 0, done.stderr
    assert "nothing to delete" in done.stdout and "typo" in done.stdout
    assert "legacy_refs_unknown" not in done.stdout + done.stderr  # no internal-sounding note
    as_json = json.loads(run_cli(cli_env, *args, "--json").stdout)
    assert (as_json["found"], as_json["deleted_count"]) == (False, 0)
    assert keys_in(services) == seeded


# -- an option given twice ---------------------------------------------------------------------------


def test_clear_bucket_confirm_given_twice_is_refused_and_deletes_nothing(
    services: Services, cli_env: dict[str, str]
) -> None:
    seeded = {image("u", "p", "s1"), "legacy.jpg"}
    put_objects(services, seeded)
    done = run_cli(cli_env, "clear-bucket", "--confirm", "wrong", "--confirm", services.settings.bucket)
    assert done.returncode == 2
    assert "--confirm" in done.stderr and "2 times" in done.stderr
    assert keys_in(services) == seeded


def _commands() -> list[Any]:
    from scenestore_cli.main import _register, cli

    _register()
    return sorted(cli.commands.values(), key=lambda c: c.name or "")


def _twice_args(command: Any) -> list[str]:
    """Required arguments filled in, then the command's first single-valued option given twice."""
    import click

    args = ["u", "p", "s"][: sum(1 for p in command.params if isinstance(p, click.Argument))]
    option = next(p for p in command.params if isinstance(p, click.Option) and not p.multiple)
    value = [] if option.is_flag else ["1"]
    return [command.name, *args, option.opts[0], *value, option.opts[0], *value]


@pytest.mark.parametrize("argv", [_twice_args(c) for c in _commands()], ids=lambda argv: argv[0])
def test_any_option_given_twice_is_bad_usage_for_every_command(
    services: Services, cli_env: dict[str, str], argv: list[str]
) -> None:
    seeded = {image("u", "p", "s1")}
    put_objects(services, seeded)
    started = time.monotonic()
    done = run_cli(cli_env, *argv, timeout=60)
    assert time.monotonic() - started < 30  # `serve` refused before it starts anything
    assert done.returncode == 2, (argv, done.stdout, done.stderr)
    assert "given 2 times" in done.stderr + done.stdout  # stdout: one JSON document when --json is the one
    assert keys_in(services) == seeded


@pytest.mark.parametrize(
    "argv",
    [
        ["clear-bucket", "--confirm", "a", "--confirm", "b", "--json"],
        ["migrate", "--resume", "some-run", "--dry-run", "--json"],
        ["delete-project", "--json"],
        ["token", "u", "--ttl", "0", "--json"],
    ],
    ids=lambda argv: argv[0],
)
def test_bad_usage_with_json_is_one_json_document(cli_env: dict[str, str], argv: list[str]) -> None:
    done = run_cli(cli_env, *argv, timeout=60)
    assert done.returncode == 2
    body = json.loads(done.stdout)
    assert sorted(body) == ["error", "message"] and body["error"] == "usage"


# -- unreachable dependencies ------------------------------------------------------------------------

COMMANDS = {
    "verify": ["verify"],
    "migrate": ["migrate"],
    "usage": ["usage", "--user", "u"],  # without --user, usage lists the bucket only
    "delete-project": ["delete-project", "u", "p", "--force"],
    "delete-scene": ["delete-scene", "u", "p", "s1", "--force"],
    "clear-bucket": None,  # filled in with the test's bucket
}
UNREACHABLE = [
    (name, dep) for name in COMMANDS for dep in ("mongodb", "s3") if not (name == "clear-bucket" and dep == "mongodb")
]


@pytest.mark.parametrize(("command", "dependency"), UNREACHABLE, ids=lambda v: str(v))
def test_an_unreachable_dependency_is_one_line_and_exit_1(
    services: Services, cli_env: dict[str, str], command: str, dependency: str
) -> None:
    put_objects(services, [image("u", "p", "s1"), "legacy/s1.png"])
    add_project(services, "p", "u")
    add_scene(services, "s1", "p", media="legacy/s1.png")  # so migrate and verify must reach S3 too
    closed = free_port()
    env = dict(cli_env)
    if dependency == "mongodb":
        env["SCENESTORE_MONGODB_URI"] = f"mongodb://127.0.0.1:{closed}/?directConnection=true"
    else:
        env["SCENESTORE_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{closed}"
    argv = COMMANDS[command] or ["clear-bucket", "--confirm", services.settings.bucket]

    for as_json in (True, False) if command in ("verify", "delete-project") else (True,):  # each run waits ~5 s
        started = time.monotonic()
        done = run_cli(env, *argv, *(["--json"] if as_json else []), timeout=90)
        elapsed = time.monotonic() - started
        assert elapsed < 30, elapsed
        assert done.returncode == 1, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        if as_json:
            body = json.loads(done.stdout)  # exactly one JSON document
            assert sorted(body) == ["error", "message"]
            assert body["error"] == f"{dependency}_unreachable"
        else:
            errors = [line for line in done.stderr.splitlines() if "cannot reach" in line]
            assert len(errors) == 1, done.stderr
            assert errors[0].startswith(f"scenestore: cannot reach {'MongoDB' if dependency == 'mongodb' else 'S3'}")
            assert "Topology Description" not in done.stderr
    assert len(keys_in(services)) == 2
