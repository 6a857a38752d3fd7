"""Entry point of the ``scenestore`` console script."""

from __future__ import annotations

import importlib
import os

import click
from scenestore import __version__

from scenestore_cli.common import Command

#: Command modules, each exposing ``commands: list[click.Command]``.
COMMAND_MODULES = ("serve", "token", "delete", "migrate", "indexes")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scenestore")
def cli() -> None:
    """scenestore: hierarchical, tenant-isolated storage for Auto Shorts (R2/S3 + MongoDB)."""


def _register() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"scenestore_cli.{name}")
        for command in module.commands:
            if not isinstance(command, Command):  # the "option given twice" rule holds for every command
                raise TypeError(f"{command.name} must be declared with scenestore_cli.common.command")
            cli.add_command(command)


def main() -> None:
    # EMF metrics go to stdout in Lambda; on a terminal they would corrupt --json output.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    _register()
    cli(prog_name="scenestore")
