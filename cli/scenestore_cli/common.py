"""What every command shares: ``--json``, output, services, and the exit-code rule of contract section 7.

Exit codes: 0 success, 1 partial failure (or a failed check), 2 bad usage (click's own usage errors
are 2 as well). Domain errors are mapped here by type, in one place.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
from scenestore.errors import ConfigError, InvalidRequest, NotFound, ScenestoreError, UsageError

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")


def exit_code_for(exc: ScenestoreError) -> int:
    if isinstance(exc, InvalidRequest | ConfigError | NotFound | UsageError):
        return EXIT_USAGE
    return EXIT_PARTIAL


def emit(result: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    """Print the result: one JSON document with ``--json``, else the human form (or indented JSON)."""
    if as_json or human is None:
        click.echo(json.dumps(result, indent=None if as_json else 2, default=str, sort_keys=False))
    else:
        click.echo(human(result))


def fail(message: str, code: int, as_json: bool, error: str = "error") -> None:
    if as_json:
        click.echo(json.dumps({"error": error, "message": message}))
    else:
        click.echo(f"scenestore: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn domain errors into the contract's exit codes with a one-line message (no traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json", False))
        try:
            return func(*args, **kwargs)
        except ScenestoreError as exc:
            fail(exc.message, exit_code_for(exc), as_json, exc.code)

    return wrapper  # type: ignore[return-value]


def load_services() -> Any:
    """Settings from the environment (a bad one exits 2 naming the variable) and the process's clients."""
    from scenestore.services import get_services

    return get_services()


def progress_enabled(as_json: bool) -> bool:
    """A progress bar only on an interactive terminal and never with ``--json``."""
    return not as_json and sys.stderr.isatty()
