"""Operator commands for deletion and usage (contract section 7).

``delete-project`` / ``delete-scene`` run the very Lambda handlers locally, looping on continuations, and refuse
while the app's document still exists unless ``--force`` (``--dry-run`` counts what would go and deletes nothing);
``clear-bucket`` empties the bucket (or one prefix) only when ``--confirm`` repeats the configured bucket's
name; ``usage`` reports objects and bytes per user and project. Every refusal happens before the first
request that could delete anything, and exits 2.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
from scenestore.errors import InvalidRequest, UsageError
from scenestore.keys import validate_id

from scenestore_cli.common import (
    command,
    counted,
    emit,
    finish,
    handle_errors,
    json_option,
    load_services,
    progress_enabled,
)
from scenestore_cli.reports.options import HtmlFile, html_option

if TYPE_CHECKING:  # scenestore.events builds pydantic models: clear-bucket and usage never need them
    from scenestore.events import Target

ProgressCallback = Callable[[int, int], None]


@contextmanager
def _progress(as_json: bool, description: str) -> Iterator[ProgressCallback]:
    """A tqdm bar on an interactive terminal (objects, with bytes alongside); a no-op otherwise."""
    if not progress_enabled(as_json):
        yield lambda _count, _size: None
        return
    from tqdm import tqdm

    with tqdm(desc=description, unit=" obj", file=sys.stderr, dynamic_ncols=True) as bar:
        seen = [0]

        def update(count: int, size: int) -> None:
            seen[0] += size
            bar.update(count)
            bar.set_postfix_str(_human_bytes(seen[0]), refresh=False)

        yield update


def _quiet_logs() -> None:
    """Handler log lines are for CloudWatch; on a terminal only warnings, unless asked for with the variable."""
    if "POWERTOOLS_LOG_LEVEL" not in os.environ:
        from scenestore.observability import logger

        logger.setLevel(logging.WARNING)


force_option = click.option(
    "--force", is_flag=True, help="Delete even though the document still exists (the app still shows it)."
)
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Report the objects and bytes that would be deleted; delete nothing."
)


@dataclass(frozen=True)
class DeleteTarget:
    """What ``delete-project`` / ``delete-scene`` was asked to delete, validated."""

    kind: Target
    user_id: str
    project_id: str
    scene_id: str | None = None

    @property
    def event(self) -> dict[str, Any]:
        """The direct-invocation event of the delete function (contract section 5)."""
        event = {"user_id": self.user_id, "project_id": self.project_id}
        return event if self.scene_id is None else {**event, "scene_id": self.scene_id}

    @property
    def label(self) -> str:
        scene = f"scene {self.scene_id} of " if self.scene_id is not None else ""
        return f"{scene}project {self.project_id} (user {self.user_id})"

    def document_exists(self, services: Any) -> bool:
        """Whether the app still has the document: deleting its storage would break what the app shows."""
        from scenestore.tenancy import find_project, find_scene_in

        if self.scene_id is not None:
            return find_scene_in(services.db, self.project_id, self.scene_id) is not None
        return find_project(services.db, self.user_id, self.project_id) is not None


def _run_delete(target: DeleteTarget, *, force: bool, dry_run: bool, as_json: bool) -> None:
    """Refuse while the document lives (unless ``force``), else run the handler; ``dry_run`` only counts."""
    services = load_services()  # a bad setting exits 2 here, naming the variable, before anything is deleted
    _quiet_logs()
    exists = target.document_exists(services)
    if exists and not (force or dry_run):
        raise UsageError(
            f"{target.label} still exists in MongoDB; nothing deleted. Deleting the document deletes its storage "
            "(the event runner or the Atlas trigger does it); --dry-run shows what would go, --force deletes anyway"
        )
    action = "counting" if dry_run else "deleting"
    with _progress(as_json, f"{action} {target.kind}") as bar:
        result = _plan(target, bar) if dry_run else _delete(target, bar)
    found = exists or bool(result["deleted_count"] or result["failed_count"] or result.get("aborted_uploads"))
    result.update(dry_run=dry_run, document_exists=exists, found=found, force=force)
    if not found:
        result["warnings"] = []  # the plain message below says all there is to say
        result["message"] = (
            f"nothing to delete: no document and no objects for {target.label} under {result['prefix']} "
            "(a typo in an id?)"
        )
    finish(result, as_json, _human_delete, ok=not result["failed_count"])


def _delete(target: DeleteTarget, bar: ProgressCallback) -> dict[str, Any]:
    """The very Lambda handler, re-invoked on its continuation until complete (as the deployed wiring does).

    Keys left after the handler's recheck end it with ``DeletionIncomplete``: the result is then the rounds'
    counts with the keys still there as the failures (exit 1)."""
    from scenestore.cleanup import DeletionIncomplete, merge_results, progress_listener

    from scenestore_cli.local.event_runner import invoke_until_complete, load_handler

    rounds: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = load_handler(target.kind)(event, context)
        rounds.append(result)
        return result

    with progress_listener(bar):
        try:
            return invoke_until_complete(handler, target.event)
        except DeletionIncomplete as exc:
            total: dict[str, Any] | None = None
            for result in [*rounds, exc.result]:
                total = merge_results(total, result)
            assert total is not None
            return total


def _plan(target: DeleteTarget, bar: ProgressCallback) -> dict[str, Any]:
    """The handler's own selection and reference checks, counting instead of deleting."""
    from scenestore.cleanup import delete_target
    from scenestore.events import parse_deletion_event

    request = parse_deletion_event(target.event, expect=target.kind)
    return delete_target(request, on_progress=bar, dry_run=True).to_dict()


@command("delete-project")
@click.argument("user_id")
@click.argument("project_id")
@force_option
@dry_run_option
@json_option
@handle_errors
def delete_project_command(user_id: str, project_id: str, force: bool, dry_run: bool, as_json: bool) -> None:
    """Delete USER_ID's project PROJECT_ID: its prefix and the legacy objects only it referenced.

    Refused (exit 2) while the project's document still exists, unless --force.
    """
    from scenestore.events import PROJECT

    target = DeleteTarget(PROJECT, validate_id(user_id, "user_id"), validate_id(project_id, "project_id"))
    _run_delete(target, force=force, dry_run=dry_run, as_json=as_json)


@command("delete-scene")
@click.argument("user_id")
@click.argument("project_id")
@click.argument("scene_id")
@force_option
@dry_run_option
@json_option
@handle_errors
def delete_scene_command(
    user_id: str, project_id: str, scene_id: str, force: bool, dry_run: bool, as_json: bool
) -> None:
    """Delete one scene's prefix and the legacy objects only it referenced.

    Refused (exit 2) while the scene's document still exists, unless --force.
    """
    from scenestore.events import SCENE

    target = DeleteTarget(
        SCENE,
        validate_id(user_id, "user_id"),
        validate_id(project_id, "project_id"),
        validate_id(scene_id, "scene_id"),
    )
    _run_delete(target, force=force, dry_run=dry_run, as_json=as_json)


@command("clear-bucket")
@click.option("--confirm", "confirm", required=True, metavar="BUCKET", help="Repeat the configured bucket's name.")
@click.option("--prefix", default="", metavar="P", help="Only objects under P (must end with '/').")
@click.option("--dry-run", is_flag=True, help="Count objects and bytes; delete nothing.")
@json_option
@handle_errors
def clear_bucket_command(confirm: str, prefix: str, dry_run: bool, as_json: bool) -> None:
    """Delete every object in the configured bucket (or under --prefix), without reference checks."""
    from scenestore.prefix_delete import check_prefix, delete_prefix
    from scenestore.request_cost import prefix_delete_cost

    services = load_services()
    bucket = services.settings.bucket
    if confirm != bucket:
        raise InvalidRequest(
            f"--confirm {confirm!r} is not the configured bucket {bucket!r} (SCENESTORE_BUCKET); nothing deleted"
        )
    check_prefix(prefix, allow_root=True)  # no _quiet_logs(): nothing here logs, and Powertools costs ~25 ms to import
    action = "counting" if dry_run else "deleting"
    with _progress(as_json, action) as bar:
        # An operator's prefix is usually large: its key ranges are planned beside the first page.
        report = delete_prefix(
            services.s3, bucket, prefix, dry_run=dry_run, allow_root=True, split_early=True, on_progress=bar
        )
    result: dict[str, Any] = {"bucket": bucket, "prefix": prefix, "dry_run": dry_run}
    if dry_run:
        result.update(object_count=report.deleted_count, total_bytes=report.total_bytes, deleted_count=0)
        result.update(failed_count=0, errors=[])
        result["requests"] = prefix_delete_cost(report.deleted_count)  # what the real run sends, at R2's prices
    else:
        result.update(report.to_dict())
    finish(result, as_json, _human_clear, ok=not result["failed_count"])


@command("usage")
@click.option("--user", "user_id", default=None, metavar="U", help="Only this user's projects.")
@json_option
@html_option
@handle_errors
def usage_command(user_id: str | None, as_json: bool, html_file: HtmlFile) -> None:
    """Objects and bytes per user and project; legacy keys (outside users/) counted apart; --html draws it."""
    from scenestore_cli.usage import storage_usage

    if user_id is not None:
        validate_id(user_id, "user_id")
    services = load_services()
    with _progress(as_json, "listing") as bar:
        report = storage_usage(services, user_id=user_id, on_progress=bar)
    if html_file is not None:
        from scenestore_cli.reports import usage_html, write_report

        write_report(html_file, usage_html(report))
    emit(report, as_json, _human_usage)


# -- human output ----------------------------------------------------------------------------------


def _human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _error_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"  failed  {e['key']}: {e['code']} {e.get('message', '')}".rstrip() for e in result.get("errors", [])]
    if result.get("failed_count", 0) > len(result.get("errors", [])):
        lines.append(f"  ... and {result['failed_count'] - len(result['errors'])} more failures")
    return lines


def _human_delete(result: dict[str, Any]) -> str:
    if not result["found"]:
        return str(result["message"])
    what = f"scene {result['scene_id']} of " if result.get("scene_id") else ""
    size = _human_bytes(result["total_bytes"])
    if result["dry_run"]:
        exists = ""
        if result["document_exists"]:
            exists = (
                " (its document still exists: --force deletes anyway)"
                if result.get("force")
                else " (its document still exists: the real run needs --force)"
            )
        return (
            f"dry run: {what}project {result['project_id']} (user {result['user_id']}): would delete "
            f"{counted(result['deleted_count'], 'object')} ({size}){exists}; nothing deleted"
        )
    lines = [
        f"{what}project {result['project_id']} (user {result['user_id']}): "
        f"deleted {counted(result['deleted_count'], 'object')} ({size}), failed {result['failed_count']:,}"
    ]
    if result.get("aborted_uploads"):
        lines[0] += f", aborted {counted(result['aborted_uploads'], 'upload')} in progress"
    lines += [f"  note    {w['code']}: {w['message']}" for w in result.get("warnings", [])]
    lines += _error_lines(result)
    return "\n".join(lines)


def _human_clear(result: dict[str, Any]) -> str:
    where = f"s3://{result['bucket']}/{result['prefix']}"
    if result["dry_run"]:
        return (
            f"dry run: {where} holds {counted(result['object_count'], 'object')} "
            f"({_human_bytes(result['total_bytes'])}); nothing deleted"
        ) + (f"\n  the real run: {result['requests']['summary']}" if "requests" in result else "")
    head = (
        f"{where}: deleted {result['deleted_count']}, failed {result['failed_count']}, "
        f"bytes {result['total_bytes']} ({_human_bytes(result['total_bytes'])})"
    )
    return "\n".join([head, *_error_lines(result)])


def _human_usage(report: dict[str, Any]) -> str:
    """A table whose total is the sum of its unindented rows (users, then legacy); indented rows break a user's
    row down (its projects, and what lies outside them)."""
    rows = [("user / project", "objects", "bytes")]
    total_objects = total_bytes = 0
    for user in report["users"]:
        rows.append((user["user_id"], f"{user['objects']:,}", _human_bytes(user["bytes"])))
        rows += [
            (f"  project {p['project_id']}", f"{p['objects']:,}", _human_bytes(p["bytes"])) for p in user["projects"]
        ]
        if user["other"]["objects"]:
            other = user["other"]
            rows.append(("  outside projects", f"{other['objects']:,}", _human_bytes(other["bytes"])))
        total_objects += user["objects"]
        total_bytes += user["bytes"]
    legacy = report["legacy"]
    if report["user_id"] is None:
        label, total_label = "legacy keys (outside users/)", "total (the whole bucket)"
    else:
        label = f"legacy keys {report['user_id']}'s documents reference"
        total_label = f"total ({report['user_id']}'s keys and the legacy ones they reference)"
    rows.append((label, f"{legacy['objects']:,}", _human_bytes(legacy["bytes"])))
    total_objects += legacy["objects"]
    total_bytes += legacy["bytes"]
    rows.append((total_label, f"{total_objects:,}", _human_bytes(total_bytes)))
    width = max(len(r[0]) for r in rows)
    lines = [f"{name:<{width}}  {objects:>9}  {size:>10}" for name, objects, size in rows]
    lines.append("(indented rows are parts of the row above them)")
    if legacy.get("missing"):
        lines.append(f"({counted(legacy['missing'], 'referenced legacy key')} with no object: not counted above)")
    return "\n".join(lines)


commands: list[click.Command] = [delete_project_command, delete_scene_command, clear_bucket_command, usage_command]
