"""The CLI's fixed cost: a command loads only its own module and what it really uses (issue 12).

``bench/cli_fixed_cost.py`` measures the time; these tests pin down the causes it removed, so a later import
at module level cannot bring them back unnoticed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
from scenestore.services import Services
from scenestore_cli.main import COMMANDS, _load, cli

#: Modules an empty ``clear-bucket`` has no use for: other commands, MongoDB, Lambda Powertools, the events.
NOT_FOR_CLEAR_BUCKET = (
    "scenestore_cli.serve",
    "scenestore_cli.migrate",
    "scenestore_cli.token",
    "scenestore.migration",
    "scenestore.events",
    "pymongo",
    "aws_lambda_powertools",
)


def test_every_command_is_found_through_the_lazy_map() -> None:
    """GIVEN the name -> module map WHEN each module is loaded THEN it defines exactly the names mapped to it."""
    defined = {command.name: module for module in set(COMMANDS.values()) for command in _load(module)}
    assert defined == COMMANDS
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    assert all(cli.get_command(ctx, name) is not None for name in COMMANDS)
    assert cli.get_command(ctx, "no-such-command") is None


def test_clear_bucket_on_an_empty_prefix_imports_only_what_it_uses(services: Services, cli_env: dict[str, str]) -> None:
    """GIVEN a fresh interpreter WHEN ``clear-bucket --prefix`` runs on an empty prefix THEN it succeeds without
    importing other commands' modules, pymongo, Powertools or the event models (``-X importtime`` lists every
    module imported, on stderr)."""
    argv = ["clear-bucket", "--confirm", services.settings.bucket, "--prefix", "nothing/here/", "--json"]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(Path(sys.executable).parent / "scenestore"), *argv],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["deleted_count"] == 0
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "scenestore.prefix_delete" in imported and "boto3" in imported  # (importlib.import_module is not listed)
    loaded = [m for m in imported if any(m == p or m.startswith(p + ".") for p in NOT_FOR_CLEAR_BUCKET)]
    assert loaded == []


def test_a_command_that_ends_leaves_with_its_exit_code_and_flushed_output(
    services: Services, cli_env: dict[str, str]
) -> None:
    """The CLI skips the interpreter's teardown: the exit status and every line of output must survive that."""
    bad = subprocess.run(
        [str(Path(sys.executable).parent / "scenestore"), "clear-bucket", "--confirm", "not-the-bucket", "--json"],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
    )
    assert bad.returncode == 2
    assert json.loads(bad.stdout)["error"]
    usage = subprocess.run(
        [str(Path(sys.executable).parent / "scenestore"), "no-such-command"],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
    )
    assert usage.returncode == 2 and "No such command" in usage.stderr
