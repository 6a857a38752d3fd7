"""``scenestore migrate`` as a real subprocess: JSON output, exit codes, a real ``kill -9`` mid-run and the
take-over that follows, rollback, and the progress bar on a terminal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scenestore.migration.journal import JOURNAL, count_applied
from scenestore.migration.runs import RUNS
from scenestore.services import Services

from tests.support.migration import assert_converged, assert_references_intact, snapshot
from tests.support.seed import Seeder
from tests.support.terminal import on_a_terminal

SCENESTORE = str(Path(sys.executable).parent / "scenestore")


def scenestore(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCENESTORE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def seed_scenes(services: Services, count: int) -> Seeder:
    seed = Seeder(services)
    projects = [seed.project(f"p{i}", user=f"user{i % 3}") for i in range(max(1, count // 10))]
    for i in range(count):
        media, audio = f"media/{i:04}.jpg", f"audio/{i:04}.mp3"
        seed.put(media)
        seed.put(audio)
        seed.scene(projects[i % len(projects)], f"s{i:04}", media=media, audio=audio)
    return seed


def test_migrate_json_then_verify(services: Services, cli_env: dict[str, str]) -> None:
    seed = seed_scenes(services, 6)

    done = scenestore(cli_env, "migrate", "--json", "--batch-size", "4")

    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {"run_id", "cursor", "done", "scanned", "migrated", "skipped", "failed", "bytes_copied", "errors"} <= set(
        out
    )
    assert (out["status"], out["done"], out["migrated"], out["failed"]) == ("done", True, 12, 0)
    assert out["run_totals"]["migrated"] == 12
    assert "started run" in done.stderr
    verify = scenestore(cli_env, "verify", "--json")
    assert verify.returncode == 0 and json.loads(verify.stdout)["legacy_referenced"] == 0
    assert_converged(services, seed)


def test_dry_run_changes_nothing(services: Services, cli_env: dict[str, str]) -> None:
    seed_scenes(services, 4)
    before = snapshot(services)
    names = sorted(services.db.list_collection_names())

    dry = scenestore(cli_env, "migrate", "--dry-run", "--json", "--shards", "2")

    assert dry.returncode == 0, dry.stderr
    out = json.loads(dry.stdout)
    assert (out["dry_run"], out["migrated"], out["done"]) == (True, 8, True)
    assert snapshot(services) == before and sorted(services.db.list_collection_names()) == names


def test_shards_rollback_and_usage_errors(services: Services, cli_env: dict[str, str]) -> None:
    seed_scenes(services, 9)
    before = snapshot(services)
    run = json.loads(scenestore(cli_env, "migrate", "--json", "--shards", "3", "--batch-size", "2").stdout)
    assert run["migrated"] == 18 and len(run["shards"]) == 3 and run["status"] == "done"

    again = json.loads(scenestore(cli_env, "migrate", "--json").stdout)
    assert again["migrated"] == 0 and again["run_id"] != run["run_id"]  # a finished run is not taken over
    resumed = scenestore(cli_env, "migrate", "--json", "--resume", run["run_id"])
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["migrated"] == 0

    back = scenestore(cli_env, "migrate", "--rollback", run["run_id"], "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["reverted"] == 18
    assert snapshot(services) == before

    assert scenestore(cli_env, "migrate", "--resume", "no-such-run").returncode == 2
    assert scenestore(cli_env, "migrate", "--resume", run["run_id"]).returncode == 2  # rolled back
    assert scenestore(cli_env, "migrate", "--rollback", "x", "--dry-run").returncode == 2
    assert scenestore(cli_env, "migrate", "--batch-size", "0").returncode == 2
    bad = scenestore({**cli_env, "SCENESTORE_MIGRATION_LEASE_TTL": "soon"}, "migrate", "--json")
    assert bad.returncode == 2 and "SCENESTORE_MIGRATION_LEASE_TTL" in bad.stdout


def _wait_for_applied(services: Services, at_least: int, proc: subprocess.Popen[str], timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if services.db[JOURNAL].count_documents({"state": "applied"}) >= at_least:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the migration did not get going")


def test_kill_9_mid_run_then_scenestore_migrate_takes_over_and_finishes(
    services: Services, cli_env: dict[str, str]
) -> None:
    """A real SIGKILL, twice, in the middle of a run (a pause between batches keeps it mid-run), then a plain
    ``scenestore migrate`` waits for the dead run's lease, takes the run over, finishes and exits 0."""
    seed = seed_scenes(services, 60)
    env = {**cli_env, "SCENESTORE_MIGRATION_LEASE_TTL": "10", "SCENESTORE_MIGRATION_PAUSE_MS": "120"}
    for at_least in (20, 60):
        proc = subprocess.Popen(
            [SCENESTORE, "migrate", "--batch-size", "3", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for_applied(services, at_least, proc)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert_references_intact(services, seed)  # nothing referenced is missing right after the kill
    run = services.db[RUNS].find_one({})
    assert run["status"] == "running"
    assert run["shards"]["all"]["lease"]["owner"] is not None  # the dead process still "holds" it

    expires_at = run["shards"]["all"]["lease"]["expires_at"].replace(tzinfo=UTC)
    started = time.monotonic()
    lease_live = expires_at > datetime.now(UTC) + timedelta(seconds=1)  # not yet lapsed on a loaded machine
    final = scenestore({**env, "SCENESTORE_MIGRATION_PAUSE_MS": "0"}, "migrate", "--json")

    assert final.returncode == 0, final.stderr
    assert "taking over unfinished run" in final.stderr
    if lease_live:  # the dead process's lease still ran: the take-over waited for it, and said so
        assert "waiting" in final.stderr, final.stderr
    assert time.monotonic() - started < 60
    out = json.loads(final.stdout)
    assert out["run_id"] == run["_id"] and out["status"] == "done" and out["failed"] == 0
    assert count_applied(services.db, run["_id"])["migrated"] == 120
    assert_converged(services, seed)


def test_a_progress_bar_on_a_terminal(services: Services, cli_env: dict[str, str]) -> None:
    seed_scenes(services, 5)
    code, bar = on_a_terminal(cli_env, "migrate")
    assert code == 0
    assert "migrating" in bar and "10/10" in bar and "obj/s" in bar and "copied" in bar


@pytest.mark.parametrize("args", [["verify"], ["verify", "--json"]])
def test_verify_exits_1_when_a_referenced_object_is_missing(
    services: Services, cli_env: dict[str, str], args: list[str]
) -> None:
    seed = Seeder(services)
    seed.scene(seed.project("p1"), "s1", media="users/u1/projects/p1/scenes/s1/image/gone.jpg")
    out = scenestore(cli_env, *args)
    assert out.returncode == 1
    text: Any = json.loads(out.stdout) if "--json" in args else out.stdout
    assert ("gone.jpg" in json.dumps(text)) and ("FAILED" in out.stdout or text["ok"] is False)
