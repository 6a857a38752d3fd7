"""``scenestore migrate`` / ``verify`` output at its edges (issue 13): notices above the progress bar, a dry run
that says "would", ``--resume`` refused with ``--dry-run``, and a truncated key list that says so."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from scenestore.services import Services

from tests.support.seed import add_project, add_scene, put_objects
from tests.support.terminal import on_a_terminal

SCENESTORE = str(Path(sys.executable).parent / "scenestore")


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCENESTORE, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def seed_legacy(services: Services, count: int) -> None:
    """``count`` scenes of project p (user u), each referencing its own legacy image, which exists."""
    add_project(services, "p", "u")
    keys = [f"media/{i:04}.jpg" for i in range(count)]
    put_objects(services, keys)
    for i, key in enumerate(keys):
        add_scene(services, f"s{i:04}", "p", media=key)


def test_notices_are_written_above_the_progress_bar(services: Services, cli_env: dict[str, str]) -> None:
    seed_legacy(services, 8)
    code, terminal = on_a_terminal({**cli_env, "SCENESTORE_MIGRATION_PAUSE_MS": "0"}, "migrate", "--batch-size", "2")
    assert code == 0, terminal
    assert "migrating" in terminal and "8/8" in terminal
    assert "scenestore: " in terminal
    # Every notice starts a line of its own: never glued to the bar's "...obj/s]".
    assert not re.search(r"[^\r\n]scenestore: ", terminal), terminal


def test_a_dry_run_says_would_migrate_and_changes_nothing(services: Services, cli_env: dict[str, str]) -> None:
    seed_legacy(services, 3)
    done = run_cli(cli_env, "migrate", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "would migrate 3" in done.stdout and "would copy 30 B" in done.stdout
    assert "nothing changed" in done.stdout
    assert re.search(r"(?<!would )migrated \d", done.stdout) is None
    assert all(doc["media"]["storageKey"].startswith("media/") for doc in services.db.scenes.find())
    as_json = json.loads(run_cli(cli_env, "migrate", "--dry-run", "--json").stdout)
    assert (as_json["dry_run"], as_json["migrated"]) == (True, 3)


def test_resume_with_dry_run_is_bad_usage(services: Services, cli_env: dict[str, str]) -> None:
    seed_legacy(services, 1)
    done = run_cli(cli_env, "migrate", "--resume", "nope", "--dry-run")
    assert done.returncode == 2
    assert "--resume" in done.stderr and "--dry-run" in done.stderr
    assert services.db.scenes.find_one()["media"]["storageKey"] == "media/0000.jpg"


def test_verify_says_how_many_of_how_many_keys_it_shows(services: Services, cli_env: dict[str, str]) -> None:
    seed_legacy(services, 13)
    done = run_cli(cli_env, "verify")
    assert done.returncode == 0, done.stderr
    legacy = done.stdout.split("legacy keys still referenced")[1].split("\n  objects under")[0]
    assert len(re.findall(r"^    media/", legacy, re.M)) == 10  # listed under their own heading
    assert "(10 of 13 shown; --json lists 13)" in legacy
