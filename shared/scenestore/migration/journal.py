"""The move journal, ``scenestore_migration_journal``: one entry per (run, document, field) moved.

An entry is written as an *intent* before the object is copied (so a copy left behind by a crash is known
to be ours) and always before the document update; it is marked *applied* once the update is done::

    {_id: "<run>|<collection>|<encoded _id>|<field>", run_id, collection, doc_id, field, old_key, new_key,
     created: bool (the new object was copied by this run, not reused), size, state, old_deleted,
     created_at, updated_at, applied_at, code}

States: ``intent`` -> ``applied`` | ``conflict`` (the app changed the field first) | ``failed``; rollback
moves applied ones to ``rolled_back``. A re-run reads the entries of its batch by ``_id`` and compares them
with the documents to tell what a crashed attempt had already done.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

from scenestore.db import chunks
from scenestore.migration.ids import encode_id
from scenestore.migration.runs import now

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

JOURNAL: Final = "scenestore_migration_journal"

INTENT: Final = "intent"
APPLIED: Final = "applied"
CONFLICT: Final = "conflict"
FAILED: Final = "failed"
ROLLED_BACK: Final = "rolled_back"


def journal(db: Database[dict[str, Any]]) -> Collection[dict[str, Any]]:
    return db[JOURNAL]


def ensure_indexes(db: Database[dict[str, Any]]) -> None:
    journal(db).create_index("run_id")


def entry_id(run_id: str, collection: str, doc_id: Any, field: str) -> str:
    return f"{run_id}|{collection}|{encode_id(doc_id)}|{field}"


def load(db: Database[dict[str, Any]], ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for batch in chunks(ids, 500):
        for doc in journal(db).find({"_id": {"$in": batch}}):
            found[doc["_id"]] = doc
    return found


def write_intents(db: Database[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
    """Write intents over entries that already exist (a retried or re-targeted move of this run)."""
    from pymongo import ReplaceOne

    if not entries:
        return
    stamp = now()
    ops = [
        ReplaceOne(
            {"_id": e["_id"]},
            {**e, "state": INTENT, "old_deleted": False, "created_at": e.get("created_at", stamp), "updated_at": stamp},
            upsert=True,
        )
        for e in entries
    ]
    journal(db).bulk_write(ops, ordered=False)


def insert_intents(db: Database[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
    """Fast path for entries known not to exist yet (one ``insert_many``)."""
    if not entries:
        return
    stamp = now()
    docs = [{**e, "state": INTENT, "old_deleted": False, "created_at": stamp, "updated_at": stamp} for e in entries]
    journal(db).insert_many(docs, ordered=False)


def mark(db: Database[dict[str, Any]], ids: list[str], state: str, **fields: Any) -> None:
    if not ids:
        return
    stamp = now()
    update = {"state": state, "updated_at": stamp, **fields}
    if state == APPLIED:
        update["applied_at"] = stamp
    for batch in chunks(ids, 500):
        journal(db).update_many({"_id": {"$in": batch}}, {"$set": update})


def iter_run(db: Database[dict[str, Any]], run_id: str) -> Iterator[dict[str, Any]]:
    """Every entry of a run in ``_id`` order, as one stream."""
    yield from journal(db).find({"run_id": run_id}).sort("_id", 1).batch_size(1000)


def count_applied(db: Database[dict[str, Any]], run_id: str) -> dict[str, int]:
    """Exact totals of a run from its journal (counts in the run document may lag after a crash)."""
    totals = {"migrated": 0, "bytes_copied": 0}
    for doc in journal(db).find({"run_id": run_id}, {"state": 1, "created": 1, "size": 1}):
        if doc.get("state") == APPLIED:
            totals["migrated"] += 1
            if doc.get("created"):
                totals["bytes_copied"] += int(doc.get("size") or 0)
    return totals
