"""``scenestore migrate`` and ``scenestore verify`` (contract sections 6 and 7).

``migrate`` runs the same ``migrate_batch`` as the Lambda function, per shard in threads, with a progress
bar on a terminal (objects, bytes, rate, ETA). Notices (taking over a run, waiting for a lease) go to
stderr so ``--json`` output stays one document. Exit 0: done with no failure (skipped references such as
``source_missing`` are reported but are not failures); 1: failures or unfinished; 2: bad usage.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Final

import click

from scenestore_cli.common import (
    command,
    counted,
    finish,
    handle_errors,
    json_option,
    load_services,
    progress_enabled,
)
from scenestore_cli.reports.options import HtmlFile, html_option


def _notice(message: str) -> None:
    click.echo(f"scenestore: {message}", err=True)


def _notices_above(bar: Any) -> Callable[[str], None]:
    """Notices for a run with a progress bar: through the bar's own ``write``, which clears the bar, prints the
    line and redraws it (a plain print lands in the middle of the bar's line)."""
    if bar is None:
        return _notice
    return lambda message: bar.write(f"scenestore: {message}", file=sys.stderr)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _human_run(result: dict[str, Any]) -> str:
    if result.get("dry_run"):
        header = f"dry run {result['run_id']}: {result.get('status')}; nothing changed"
        migrated, copied = "would migrate", "would copy"
    else:
        header = f"run {result['run_id']}: {result.get('status')}"
        migrated, copied = "migrated", "copied"
    lines = [
        header,
        f"  scanned {result['scanned']}  {migrated} {result['migrated']}  skipped {result['skipped']}  "
        f"failed {result['failed']}  {copied} {_size(result['bytes_copied'])}  in {result.get('elapsed_s', 0)}s",
    ]
    moves = result.get("moves", [])
    lines += [f"  would move {move['from']} -> {move['to']}" for move in moves[:VERIFY_SHOWN]]
    if result["migrated"] > min(len(moves), VERIFY_SHOWN) and moves:
        lines.append(
            f"  ({min(len(moves), VERIFY_SHOWN):,} of {result['migrated']:,} shown; --json lists {len(moves):,})"
        )
    lines += [
        f"  {e['code']}: {e.get('collection', '')} {e.get('id', '')} {e.get('field', '')} {e.get('key', '')}"
        for e in result.get("errors", [])[:20]
    ]
    if "requests" in result:
        lines.append(f"  the real run: {result['requests']['summary']}")
    return "\n".join(lines)


def _human_rollback(result: dict[str, Any]) -> str:
    lines = [
        f"rollback of {result['run_id']}: {result['status']}",
        f"  reverted {result['reverted']}  restored {result['restored']}  deleted new {result['deleted_new']}  "
        f"skipped {result['skipped']}  failed {result['failed']}",
    ]
    lines += [f"  {e['code']}: {e.get('key', '')}" for e in result.get("errors", [])[:20]]
    return "\n".join(lines)


@command("migrate")
@click.option("--dry-run", is_flag=True, help="Report what would move; change nothing (not even run records).")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--shards", type=click.IntRange(1, 256), default=1, show_default=True, help="Ranges run concurrently.")
@click.option("--resume", metavar="RUN_ID", help="Continue this run (default: take over any unfinished run).")
@click.option("--rollback", metavar="RUN_ID", help="Point documents back at their old keys, from the run's journal.")
@json_option
@handle_errors
def migrate_command(
    dry_run: bool, batch_size: int, shards: int, resume: str | None, rollback: str | None, as_json: bool
) -> None:
    """Move legacy keys into the users/{u}/projects/{p}/... layout, crash-safely and resumably."""
    from scenestore.migration import RunOptions, rollback_run, run_migration

    if rollback and (dry_run or resume):
        raise click.UsageError("--rollback cannot be combined with --dry-run or --resume")
    if dry_run and resume:
        raise click.UsageError("--resume cannot be combined with --dry-run: a dry run keeps no run to resume")
    services = load_services()
    if rollback:
        outcome = rollback_run(services, rollback, on_info=_notice)
        finish(outcome, as_json, _human_rollback, ok=not outcome["failed"])
    bar = _progress_bar(services, dry_run) if progress_enabled(as_json) else None
    copied = [0]

    def on_progress(result: Any) -> None:
        if bar is not None:
            copied[0] += result.bytes_copied
            bar.update(result.migrated + result.skipped + result.failed)
            bar.set_postfix_str(f"{_size(copied[0])} {'to copy' if dry_run else 'copied'}", refresh=False)

    try:
        summary = run_migration(
            services,
            RunOptions(
                batch_size=batch_size,
                shards=shards,
                dry_run=dry_run,
                resume=resume,
                on_progress=on_progress,
                on_info=_notices_above(bar),
            ),
        )
    finally:
        if bar is not None:
            bar.close()
    if dry_run:
        from scenestore.request_cost import migration_cost

        summary["requests"] = migration_cost(summary, batch_size=batch_size)  # the real run's, at R2's prices
    if not dry_run:  # the run's own record: every process's and every execution's errors (the first 100)
        from scenestore.migration import runs

        summary["errors"] = runs.summary(runs.get_run(services.db, summary["run_id"]))["errors"]
    finish(summary, as_json, _human_run, ok=not summary["failed"] and summary["done"])


def _progress_bar(services: Any, dry_run: bool) -> Any:
    from scenestore.migration.audit import count_legacy_references
    from tqdm import tqdm

    total = count_legacy_references(services)
    desc = "checking (dry run)" if dry_run else "migrating"
    return tqdm(total=total, unit="obj", desc=desc, file=sys.stderr, smoothing=0.1)


#: Keys listed per finding in the human report; the counts are always the full ones.
VERIFY_SHOWN: Final = 10


def _human_verify(result: dict[str, Any]) -> str:
    """The verdict, then one section per finding: its count, what it means, and its first keys under it."""
    verdict = "ok" if result["ok"] else f"FAILED ({counted(result['missing'], 'referenced object')} missing)"
    lines = [
        f"{verdict}: {counted(result['objects'], 'object')} ({_size(result['bytes'])}), "
        f"{counted(result['references'], 'reference')}"
    ]
    orphan_scenes = result.get("orphan_scenes", 0)
    sections = [
        ("missing objects (referenced, no object; fails the audit)", result["missing"], None, "missing_keys"),
        ("legacy keys still referenced (left to migrate)", result["legacy_referenced"], None, "legacy_keys"),
        ("objects under projects that are gone", result["orphaned"], result["orphaned_bytes"], "orphaned_keys"),
        (
            "objects no document references",
            result["unreferenced"],
            result["unreferenced_bytes"],
            "unreferenced_keys",
        ),
        ("scene documents whose project is gone (apart; not a failure)", orphan_scenes, None, "orphan_scene_ids"),
    ]
    for title, count, size, keys in sections:
        lines.append(f"  {title}: {count:,}" + (f" ({_size(size)})" if size is not None else ""))
        shown = result.get(keys, [])[:VERIFY_SHOWN]
        lines += [f"    {key}" for key in shown]
        if count > len(shown):
            lines.append(f"    ({len(shown):,} of {count:,} shown; --json lists {len(result.get(keys, [])):,})")
    if orphan_scenes:
        lines.append(
            f"    they hold {counted(result.get('orphan_scene_references', 0), 'reference')}, "
            f"{result.get('orphan_scene_missing', 0):,} without an object"
        )
    run = result.get("last_run")
    if run:
        totals = run["totals"]
        lines.append(
            f"  last migration run {run['run_id']} ({run['status']}): migrated {totals.get('migrated', 0):,}, "
            f"skipped {totals.get('skipped', 0):,}, failed {totals.get('failed', 0):,}"
        )
        for e in run["errors"][:VERIFY_SHOWN]:
            lines.append(f"    {e['code']}: {e.get('collection', '')} {e.get('id', '')} {e.get('key', '')}".rstrip())
        if len(run["errors"]) > VERIFY_SHOWN:
            lines.append(f"    ({VERIFY_SHOWN} of its first {len(run['errors'])} errors shown; --json lists them)")
    return "\n".join(lines)


@command("verify")
@json_option
@html_option
@handle_errors
def verify_command(as_json: bool, html_file: HtmlFile) -> None:
    """Audit the bucket against the documents; exit 1 if any referenced object is missing."""
    from scenestore.migration import runs, verify_storage

    services = load_services()
    result = verify_storage(services)
    result["last_run"] = runs.latest(services.db)  # a state machine's run keeps its errors there
    if html_file is not None:
        from scenestore_cli.reports import audit_html, write_report

        write_report(html_file, audit_html(result))
    finish(result, as_json, _human_verify, ok=result["ok"])


commands: list[click.Command] = [migrate_command, verify_command]
