"""Entry point of the ``scenestore`` console script.

Commands load lazily: ``scenestore clear-bucket`` imports the module that defines ``clear-bucket`` and no
other (the server, the token minting and the migration engine cost imports a deletion never needs; the CLI's
fixed cost is measured in bench/cli_fixed_cost.py). ``--help`` and ``_register`` load them all.

A finished command leaves without tearing the interpreter down: its ``atexit`` handlers run, its output is
flushed, and the process ends (``os._exit``). Tearing down botocore's models and every imported module took
longer than the command itself on a busy machine (measured: 0.9 s instead of 1.5 s for one boto3 request).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys
from typing import Final

import click
from scenestore import __version__

from scenestore_cli.common import Command

#: Command name -> the module (under ``scenestore_cli``) whose ``commands`` list defines it.
COMMANDS: Final[dict[str, str]] = {
    "serve": "serve",
    "token": "token",
    "delete-project": "delete",
    "delete-scene": "delete",
    "clear-bucket": "delete",
    "usage": "delete",
    "migrate": "migrate",
    "verify": "migrate",
    "ensure-indexes": "indexes",
    "preflight": "preflight",
}
#: Command modules, each exposing ``commands: list[click.Command]``.
COMMAND_MODULES: Final = tuple(dict.fromkeys(COMMANDS.values()))


def _load(module_name: str) -> list[click.Command]:
    module = importlib.import_module(f"scenestore_cli.{module_name}")
    for command in module.commands:
        if not isinstance(command, Command):  # the "option given twice" rule holds for every command
            raise TypeError(f"{command.name} must be declared with scenestore_cli.common.command")
    return list(module.commands)


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            for command in _load(COMMANDS[cmd_name]):
                self.add_command(command)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scenestore")
def cli() -> None:
    """scenestore: hierarchical, tenant-isolated storage for Auto Shorts (R2/S3 + MongoDB)."""


def _register() -> None:
    """Load every command now (tests that walk all commands)."""
    for name in COMMAND_MODULES:
        for command in _load(name):
            cli.add_command(command)


def main() -> None:
    # EMF metrics go to stdout in Lambda; on a terminal they would corrupt --json output.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    # pydantic looks for plugins by reading every installed distribution's entry points the first time a model
    # is built (~30 ms in a full virtualenv); scenestore's settings and events use none. An explicit value wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        cli(prog_name="scenestore")
    except SystemExit as done:
        _leave(done.code)
    _leave(0)


def _leave(code: object) -> None:
    """Exit with ``code`` as ``sys.exit`` would, minus the interpreter's teardown (module doc).

    Only a command that ended (returned or called ``sys.exit``) gets here; an unexpected exception propagates
    with its traceback and the normal shutdown. ``atexit`` handlers still run (thread pools join, logging
    flushes), then stdout and stderr are flushed; a closed pipe on stdout is not an error at this point.
    """
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed to stderr, status 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)
