"""``scenestore ensure-indexes``: the indexes of contract section 2, and the multipart records' TTL index,
idempotently."""

from __future__ import annotations

from scenestore import multipart
from scenestore.db import ensure_indexes

from scenestore_cli.common import command, emit, handle_errors, json_option, load_services


@command("ensure-indexes")
@json_option
@handle_errors
def ensure_indexes_command(as_json: bool) -> None:
    """Create the reference and tenancy indexes (run once against Atlas; `serve` runs it itself)."""
    services = load_services()
    names = [*ensure_indexes(services.db), *multipart.ensure_indexes(services.db)]
    emit({"indexes": names}, as_json, lambda r: "\n".join(f"ok  {n}" for n in r["indexes"]))


commands = [ensure_indexes_command]
