"""``scenestore preflight``: before cut-over, prove that the configured bucket and database are set up as
scenestore expects, and say how to fix what is not (contract section 7).

It writes only under a fresh ``scenestore-preflight/<random>/`` prefix and into a scratch
``scenestore_preflight_<random>`` collection, and removes both whatever happens: a failed check, an unreachable
dependency, Ctrl-C or SIGTERM (both become :class:`Interrupted`, so the ``finally`` runs; a second signal during
cleanup is ignored until it is done). The bucket's rules and the app's collections are only read.

Exit 0 when no check is ✗, 1 otherwise (also when interrupted), 2 on bad usage. An unreachable MongoDB or S3
ends the run as for every command: one line naming it, exit 1, after the cleanup of what was written.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Final

import click

from scenestore_cli.common import (
    EXIT_PARTIAL,
    command,
    dependency_failure,
    emit,
    fail,
    handle_errors,
    json_option,
    load_services,
)
from scenestore_cli.preflight_checks import Check, Run

#: The preflight's S3 client gives up sooner than the service's (8 attempts, 60 s reads): an unreachable store
#: must end the command within about 30 s (contract section 7).
S3_CLIENT_OVERRIDES: Final = {"retries": {"mode": "standard", "max_attempts": 2}, "read_timeout": 10}


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM during a run: unwinds to the cleanup like ``KeyboardInterrupt``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _origin(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not value.startswith(("http://", "https://")) or value.count("/") != 2:
            raise click.BadParameter(f"{value!r} is not an origin like https://app.example.com")
    return tuple(value.rstrip("/") for value in values)


@command("preflight")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    callback=_origin,
    metavar="URL",
    help="A browser origin the bucket's CORS must allow (repeatable; default: SCENESTORE_CORS_ORIGINS).",
)
@json_option
@handle_errors
def preflight_command(origins: tuple[str, ...], as_json: bool) -> None:
    """Check the configured bucket, database and keys before cut-over; print the fix for each ✗."""
    from scenestore.clients import make_s3_client
    from scenestore.storage import ObjectStore

    services = load_services()
    settings = services.settings
    s3 = make_s3_client(settings, **S3_CLIENT_OVERRIDES)
    show: Callable[[Check], None] = (lambda _check: None) if as_json else (lambda check: click.echo(check.render()))
    run = Run(
        settings=settings,
        s3=s3,
        store=ObjectStore(s3, settings.bucket),
        db=services.db,
        origins=origins or settings.cors_origins,
        on_check=show,
    )
    if not as_json:
        click.echo(
            f"scenestore preflight: bucket {settings.bucket} at {settings.s3_endpoint_url or 'AWS'}, database "
            f"{settings.mongodb_db}; writing only under {run.prefix} and {run.collection}"
        )
    outcome = execute(run)
    result = {
        "ok": not run.failed,
        "bucket": settings.bucket,
        "endpoint": settings.s3_endpoint_url,
        "database": settings.mongodb_db,
        "prefix": run.prefix,
        "collection": run.collection,
        "checks": [check.to_dict() for check in run.checks],
        "summary": run.summary(),
        **outcome,
    }
    if outcome.get("interrupted"):
        fail(f"interrupted ({outcome['interrupted']}); {_cleanup_words(outcome)}", EXIT_PARTIAL, as_json, "interrupted")
    if outcome.get("error"):
        fail(f"{outcome['error'][1]}; {_cleanup_words(outcome)}", EXIT_PARTIAL, as_json, outcome["error"][0])
    emit(result, as_json, _human_summary)
    sys.exit(0 if result["ok"] else EXIT_PARTIAL)


def execute(run: Run) -> dict[str, Any]:
    """Every check, then the cleanup, whatever ended the checks. Returns ``cleaned_up`` (and what stopped the run:
    ``interrupted`` with the signal's name, or ``error``, a dependency failure's ``(code, line)``)."""
    from scenestore_cli.preflight_checks.config import run_config_checks
    from scenestore_cli.preflight_checks.mongo import run_mongo_checks
    from scenestore_cli.preflight_checks.s3 import run_s3_checks

    outcome: dict[str, Any] = {}
    previous = _set_signal_handlers(_raise_interrupted)
    try:
        try:
            run_config_checks(run)
            run_mongo_checks(run)
            run_s3_checks(run)
        except Interrupted as stop:
            outcome["interrupted"] = stop.args[0]
        except KeyboardInterrupt:
            outcome["interrupted"] = "SIGINT"
        except Exception as exc:
            failure = dependency_failure(exc)
            if failure is None:
                raise
            outcome["error"] = failure
    except Interrupted as stop:  # a signal while the first one (or a failure) was being handled
        outcome["interrupted"] = stop.args[0]
    finally:
        _set_signal_handlers(signal.SIG_IGN)  # cleanup is not itself interrupted: a second Ctrl-C waits for it
        try:
            outcome.update(cleanup(run))
        finally:
            _set_signal_handlers(previous)
    return outcome


def cleanup(run: Run) -> dict[str, Any]:
    """Remove the scratch collection and the prefix; a cleanup that fails is reported, never raised."""
    from scenestore_cli.preflight_checks.mongo import drop_scratch
    from scenestore_cli.preflight_checks.s3 import remove_prefix

    problems = []
    if run.scratch_written:
        try:
            drop_scratch(run)
        except Exception as exc:
            problems.append(f"the scratch collection {run.collection} ({_first_line(exc)})")
    if run.s3_written:
        try:
            left = remove_prefix(run)
            if left:
                problems.append(f"{left} object(s) or upload(s) under {run.prefix}")
        except Exception as exc:
            problems.append(f"{run.prefix} ({_first_line(exc)})")
    if problems:
        return {"cleaned_up": False, "cleanup_problems": problems}
    return {"cleaned_up": True}


def _first_line(exc: BaseException) -> str:
    failure = dependency_failure(exc)
    return failure[1] if failure else (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _cleanup_words(outcome: dict[str, Any]) -> str:
    if outcome.get("cleaned_up"):
        return "removed what it wrote"
    return "could not remove " + ", ".join(outcome.get("cleanup_problems", []))


def _human_summary(result: dict[str, Any]) -> str:
    counts = result["summary"]
    words = f"{counts['ok']} passed, {counts['fail']} failed, {counts['warn']} warning(s)"
    if counts["skipped"]:
        words += f", {counts['skipped']} not run"
    return f"{words}; {_cleanup_words(result)} ({result['prefix']}, {result['collection']})"


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(signum)


Handler = Callable[[int, Any], Any] | int | signal.Handlers | None


def _set_signal_handlers(handler: Handler | dict[int, Handler]) -> dict[int, Handler]:
    """Set SIGINT's and SIGTERM's handler (one for both, or a mapping from an earlier call); returns the previous.

    Outside the main thread (a test calling ``execute`` from a worker) signals cannot be set and stay as they were.
    """
    previous: dict[int, Handler] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        chosen = handler.get(signum) if isinstance(handler, dict) else handler
        if chosen is None:
            continue
        with suppress(ValueError):
            previous[signum] = signal.signal(signum, chosen)
    return previous


commands = [preflight_command]
