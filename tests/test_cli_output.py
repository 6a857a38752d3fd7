"""What the commands print, in words a reader can trust: a total that is the sum of its rows, "1 object", a dry
run that does not ask for an option it was given, an audit whose keys sit under their own heading, and a migration
dry run that lists the keys it would move (capped, counts exact).

The click commands run in-process against the test's bucket and database (the console script's own behaviour is
covered in test_cli_delete.py and test_migration_cli.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from click.testing import CliRunner
from scenestore.migration import batch, models
from scenestore.services import Services
from scenestore_cli.delete import clear_bucket_command, delete_project_command, delete_scene_command, usage_command
from scenestore_cli.migrate import migrate_command, verify_command

from tests.support.seed import Seeder, add_project, add_scene, image, output, put_objects


def invoke(command: Any, *args: str) -> Any:
    return CliRunner().invoke(command, list(args), catch_exceptions=False)


def _rows(text: str) -> list[tuple[str, int]]:
    """``(label, objects)`` of each row of the usage table (the header and the notes left out)."""
    rows = []
    for line in text.splitlines()[1:]:
        match = re.match(r"^(.*?)\s{2,}([\d,]+)\s{2,}\S+ \S+$", line)
        if match:
            rows.append((match.group(1), int(match.group(2).replace(",", ""))))
    return rows


@pytest.mark.parametrize("user", [None, "alice"])
def test_usage_total_is_the_sum_of_its_unindented_rows(services: Services, user: str | None) -> None:
    """GIVEN alice with two projects and legacy objects her documents reference WHEN ``usage [--user alice]``
    prints its table THEN the total row equals the sum of the unindented rows (users, legacy), and the indented
    rows (projects) add up to their user's row."""
    put_objects(services, [image("alice", "p1", "s1"), image("alice", "p1", "s2"), image("alice", "p2", "s1")])
    put_objects(services, [image("bob", "q", "s1"), "legacy/a.jpg", "b.mp3", "unowned.png"])
    add_project(services, "p1", "alice", output="b.mp3")
    add_scene(services, "s1", "p1", media="legacy/a.jpg", audio="gone.mp3")

    done = invoke(usage_command, *(["--user", user] if user else []))

    assert done.exit_code == 0, done.output
    rows = _rows(done.stdout)
    total_label, total = rows[-1]
    assert total_label.startswith("total")
    top = [objects for label, objects in rows[:-1] if not label.startswith(" ")]
    assert sum(top) == total == (5 if user else 7)
    alice = [objects for label, objects in rows if label.startswith("  project ")][:2]
    assert sum(alice) == dict(rows)["alice"] == 3
    if user:
        assert "1 referenced legacy key with no object" in done.stdout  # gone.mp3


def test_one_is_singular(services: Services) -> None:
    put_objects(services, [image("u", "p", "s1"), output("u", "q")])
    add_project(services, "p", "u")
    scene = invoke(delete_scene_command, "u", "p", "s1")
    assert "deleted 1 object (" in scene.stdout
    dry = invoke(delete_project_command, "u", "q", "--dry-run")
    assert "would delete 1 object (" in dry.stdout
    bucket = services.settings.bucket
    clear = invoke(clear_bucket_command, "--confirm", bucket, "--prefix", "users/u/projects/q/", "--dry-run")
    assert "holds 1 object (" in clear.stdout
    verify = invoke(verify_command)
    assert "1 object (" in verify.stdout and "0 references" in verify.stdout
    for done in (scene, dry, clear, verify):
        assert not re.search(r"\b1 (objects|references|keys)\b", done.stdout), done.stdout


def test_a_forced_dry_run_does_not_ask_for_force(services: Services) -> None:
    put_objects(services, [image("u", "p", "s1")])
    add_project(services, "p", "u")
    forced = invoke(delete_project_command, "u", "p", "--force", "--dry-run")
    assert forced.exit_code == 0
    assert "needs --force" not in forced.stdout and "--force deletes anyway" in forced.stdout
    plain = invoke(delete_project_command, "u", "p", "--dry-run")
    assert "the real run needs --force" in plain.stdout


def _sections(text: str) -> dict[str, tuple[str, list[str]]]:
    """verify's text output: heading -> (its count, the lines listed under it)."""
    sections: dict[str, tuple[str, list[str]]] = {}
    heading = ""
    for line in text.splitlines()[1:]:
        if line.startswith("    "):
            sections[heading][1].append(line.strip())
        else:
            heading, _, count = line.strip().rpartition(": ")
            sections[heading] = (count, [])
    return sections


def test_verify_lists_each_key_under_its_own_finding(services: Services) -> None:
    """GIVEN a legacy key still referenced and nothing unreferenced WHEN verify prints THEN the legacy key is listed
    under the legacy heading, and no section with a count of 0 lists anything."""
    seed = Seeder(services)
    seed.put("legacy.jpg")
    seed.scene(seed.project("p1"), "s1", media="legacy.jpg", audio="users/u1/projects/p1/scenes/s1/audio/gone.mp3")

    done = invoke(verify_command)

    assert done.exit_code == 1
    sections = _sections(done.stdout)
    legacy = next(value for heading, value in sections.items() if heading.startswith("legacy keys"))
    missing = next(value for heading, value in sections.items() if heading.startswith("missing objects"))
    assert legacy == ("1", ["legacy.jpg"])
    assert missing == ("1", ["users/u1/projects/p1/scenes/s1/audio/gone.mp3"])
    for heading, (count, listed) in sections.items():
        if count.split()[0] == "0":
            assert listed == [], heading
    assert done.stdout.startswith("FAILED (1 referenced object missing)")


def test_verify_prints_scenes_of_a_deleted_project_apart_and_passes(services: Services) -> None:
    seed = Seeder(services)
    seed.scene("deleted-project", "s1", media="users/u1/projects/deleted-project/scenes/s1/image/a.jpg")
    done = invoke(verify_command)
    assert done.exit_code == 0, done.output
    sections = _sections(done.stdout)
    orphans = next(value for heading, value in sections.items() if heading.startswith("scene documents"))
    assert orphans[0] == "1" and orphans[1][0] == "s1"
    assert "1 reference, 1 without an object" in done.stdout


def _legacy_scenes(services: Services, count: int) -> None:
    add_project(services, "p", "u")
    keys = [f"media/{i:04}.jpg" for i in range(count)]
    put_objects(services, keys)
    for i, key in enumerate(keys):
        add_scene(services, f"s{i:04}", "p", media=key)


def test_a_dry_run_lists_the_keys_that_would_move(services: Services) -> None:
    _legacy_scenes(services, 4)
    done = invoke(migrate_command, "--dry-run", "--json", "--batch-size", "3")
    result = json.loads(done.stdout)
    assert result["migrated"] == 4 and result["moves_capped"] is False
    assert sorted(move["from"] for move in result["moves"]) == [f"media/{i:04}.jpg" for i in range(4)]
    first = next(move for move in result["moves"] if move["from"] == "media/0000.jpg")
    assert first == {
        "collection": "scenes",
        "id": "str:s0000",  # typed, as in the errors list
        "field": "media.storageKey",
        "from": "media/0000.jpg",
        "to": "users/u/projects/p/scenes/s0000/image/0000.jpg",
    }
    human = invoke(migrate_command, "--dry-run")
    assert "would move media/0000.jpg -> users/u/projects/p/scenes/s0000/image/0000.jpg" in human.stdout
    assert services.db.scenes.find_one({"_id": "s0000"})["media"]["storageKey"] == "media/0000.jpg"


def test_a_dry_run_caps_the_list_and_says_so_with_exact_counts(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap is 1000 moves; lowered to 3 here so that a handful of scenes go past it (over several batches)."""
    assert models.MAX_LISTED_MOVES == 1000
    monkeypatch.setattr(models, "MAX_LISTED_MOVES", 3)
    monkeypatch.setattr(batch, "MAX_LISTED_MOVES", 3)
    _legacy_scenes(services, 7)
    result = json.loads(invoke(migrate_command, "--dry-run", "--json", "--batch-size", "5").stdout)
    assert result["migrated"] == 7 and len(result["moves"]) == 3 and result["moves_capped"] is True
    human = invoke(migrate_command, "--dry-run").stdout
    assert "(3 of 7 shown; --json lists 3)" in human
