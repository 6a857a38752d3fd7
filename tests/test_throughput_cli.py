"""The CLI's fixed cost: a command loads only its own module and what it really uses (issue 12).

``bench/cli_fixed_cost.py`` measures the time; these tests pin down the causes it removed, so a later import
at module level cannot bring them back unnoticed.
"""

from __future__ import annotations

import json
import subprocess
import sys

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

_PROBE = """
import json, sys
from scenestore_cli.main import main
sys.argv = ["scenestore", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


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
    importing other commands' modules, pymongo, Powertools or the event models."""
    argv = ["clear-bucket", "--confirm", services.settings.bucket, "--prefix", "nothing/here/", "--json"]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv)], capture_output=True, text=True, env=cli_env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    report, probe = json.loads(lines[0]), json.loads(lines[-1])
    assert probe["code"] == 0 and report["deleted_count"] == 0
    loaded = [m for m in probe["modules"] if any(m == p or m.startswith(p + ".") for p in NOT_FOR_CLEAR_BUCKET)]
    assert loaded == []
