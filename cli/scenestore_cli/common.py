"""What every command shares: ``--json``, output, services, and the exit-code rule of contract section 7.

Exit codes: 0 success, 1 partial failure (or a failed check), 2 bad usage (click's own usage errors
are 2 as well). Domain errors are mapped here by type, in one place, and so are unreachable dependencies
(MongoDB, S3): one line naming the dependency, exit 1, ``{"error": "mongodb_unreachable" | "s3_unreachable",
"message"}`` with ``--json``. Every command is a :class:`Command`, which refuses an option given twice.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from functools import partial, wraps
from typing import Any, Final, NoReturn, TypeVar
from urllib.parse import urlsplit

import click
from scenestore.errors import ConfigError, InvalidRequest, NotFound, ScenestoreError, UsageError

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2

F = TypeVar("F", bound=Callable[..., Any])

MONGODB_UNREACHABLE: Final = "mongodb_unreachable"
S3_UNREACHABLE: Final = "s3_unreachable"
MONGODB_ERROR: Final = "mongodb_error"
S3_ERROR: Final = "s3_error"

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")


class Command(click.Command):
    """A click command on which an option given twice is bad usage (exit 2, nothing done), and whose usage
    errors are one JSON document on stdout when ``--json`` was asked for.

    Click lets the last of ``--confirm a --confirm b`` win, which once let ``clear-bucket`` act on a name the
    operator had not meant to confirm. Click's own parser reports the order in which it met each parameter;
    an option that appears there twice without being ``multiple`` (or a counter) is refused before any
    value is processed.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        as_json = "--json" in args  # before parsing, which consumes ``args``
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            if not as_json:
                raise
            fail(exc.format_message(), EXIT_USAGE, True, "usage")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:
            _, _, order = self.make_parser(ctx).parse_args(args=list(args))
            for param, seen in Counter(order).items():
                if seen > 1 and isinstance(param, click.Option) and not (param.multiple or param.count):
                    raise click.UsageError(f"option {param.opts[0]} is given {seen} times; give it once", ctx)
        return super().parse_args(ctx, args)


#: ``@command("name")``: every scenestore command is declared with this (``main`` checks it).
command = partial(click.command, cls=Command)


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


def finish(result: Any, as_json: bool, human: Callable[[Any], str], *, ok: bool) -> NoReturn:
    """Print the result and exit by the contract's rule: 0 when ``ok``, else 1 (some part failed or a check did
    not pass). One place, so that no command can print a failure and still exit 0."""
    emit(result, as_json, human)
    sys.exit(EXIT_OK if ok else EXIT_PARTIAL)


def fail(message: str, code: int, as_json: bool, error: str = "error") -> NoReturn:
    if as_json:
        click.echo(json.dumps({"error": error, "message": message}))
    else:
        click.echo(f"scenestore: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn domain errors and failing dependencies into the contract's exit codes with a one-line message
    (no traceback). Anything else propagates unchanged: it is a bug, and its traceback is wanted."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json", False))
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, click.UsageError) and as_json:  # raised by the command itself (bad combination)
                fail(exc.format_message(), EXIT_USAGE, True, "usage")
            dependency = dependency_failure(exc)
            if dependency is not None:
                fail(dependency[1], EXIT_PARTIAL, as_json, dependency[0])
            if isinstance(exc, ScenestoreError):
                fail(exc.message, exit_code_for(exc), as_json, exc.code)
            raise

    return wrapper  # type: ignore[return-value]


def dependency_failure(exc: BaseException) -> tuple[str, str] | None:
    """``(code, one-line message)`` when ``exc`` is MongoDB or S3 failing.

    Unreachable (refused, timed out, no such host), also as the cause of a domain error:
    ``mongodb_unreachable`` / ``s3_unreachable``, naming the variable that says where the dependency is.
    Any other refusal by S3 or MongoDB that reached the command unwrapped: ``s3_error`` / ``mongodb_error``
    with the service's own message. ``None`` for everything else.
    """
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from pymongo.errors import ConnectionFailure, PyMongoError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionFailure):
            return MONGODB_UNREACHABLE, f"cannot reach MongoDB (SCENESTORE_MONGODB_URI): {_mongo_reason(current)}"
        if isinstance(current, BotoConnectionError | HTTPClientError):
            where = _endpoint(current)
            return S3_UNREACHABLE, f"cannot reach S3{where} (SCENESTORE_S3_ENDPOINT_URL): {_first_line(current)}"
        current = current.__cause__ or current.__context__
    if isinstance(exc, ClientError | BotoCoreError):
        return S3_ERROR, f"S3 refused the request: {_first_line(exc)}"
    if isinstance(exc, PyMongoError):
        return MONGODB_ERROR, f"MongoDB refused the request: {_first_line(exc)}"
    return None


def _mongo_reason(exc: BaseException) -> str:
    """pymongo's first clause (``host:port: [Errno 111] Connection refused``), without the topology dump."""
    text = _first_line(exc)
    for cut in (" (configured timeouts", ", Timeout:", ", Topology Description"):
        text = text.split(cut, 1)[0]
    return text


def _endpoint(exc: BaseException) -> str:
    url = getattr(exc, "kwargs", {}).get("endpoint_url")
    if not isinstance(url, str):
        return ""
    parts = urlsplit(url)
    return f" at {parts.scheme}://{parts.netloc}" if parts.netloc else ""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else f"{text[:297]}..."


def load_services() -> Any:
    """Settings from the environment (a bad one exits 2 naming the variable) and the process's clients."""
    from scenestore.services import get_services

    quiet_library_warnings()
    return get_services()


def quiet_library_warnings() -> None:
    """Powertools warns on stderr when a handler run locally published no metric: noise next to one-line output."""
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def counted(number: int | None, noun: str, plural: str | None = None) -> str:
    """``1 object``, ``2 objects``, ``1,000 objects`` (``plural`` when adding an ``s`` is wrong)."""
    amount = f"{number:,}" if isinstance(number, int) else str(number)
    return f"{amount} {noun if number == 1 else (plural or noun + 's')}"


def progress_enabled(as_json: bool) -> bool:
    """A progress bar only on an interactive terminal and never with ``--json``."""
    return not as_json and sys.stderr.isatty()
