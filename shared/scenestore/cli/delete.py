"""Commands of this group are added by their issue; the module exists so registration is stable."""

from __future__ import annotations

import click

commands: list[click.Command] = []
